/** The "pause on battery" switch, shown only where the browser reports the battery (Battery Status API). */
import { setPauseOnBattery, useBattery } from '../lib/battery.ts';

export function BatteryPause() {
  const battery = useBattery();
  if (!battery.supported) return null;
  return (
    <div className="battery">
      <label className="check">
        <input
          type="checkbox"
          checked={battery.enabled}
          onChange={(e) => setPauseOnBattery(e.target.checked)}
          data-testid="pause-on-battery"
        />
        Pause while on battery
      </label>
      {battery.enabled && battery.charging !== undefined && (
        <span className="muted small" role="status" data-testid="battery-state">
          {battery.pausedByBattery
            ? ' Paused: running on battery. Work resumes when you plug in.'
            : battery.charging
              ? ' Plugged in.'
              : ' On battery.'}
        </span>
      )}
    </div>
  );
}
