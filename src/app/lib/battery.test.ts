import { describe, expect, it } from 'vitest';
import { batteryAction } from './battery.ts';

describe('pause on battery', () => {
  const base = { enabled: true, charging: true, running: true, pausedByBattery: false };

  it('pauses a running loop when the charger is unplugged, only if enabled', () => {
    expect(batteryAction({ ...base, charging: false })).toBe('pause');
    expect(batteryAction({ ...base, charging: false, enabled: false })).toBe('none');
    expect(batteryAction({ ...base })).toBe('none');
  });

  it('resumes only a loop it paused itself, once plugged in or when the setting is turned off', () => {
    const paused = { ...base, running: false, pausedByBattery: true };
    expect(batteryAction({ ...paused, charging: true })).toBe('resume');
    expect(batteryAction({ ...paused, charging: false, enabled: false })).toBe('resume');
    expect(batteryAction({ ...paused, charging: false })).toBe('none');
    expect(batteryAction({ ...base, running: false, charging: true })).toBe('none');
  });
});
