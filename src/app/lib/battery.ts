/**
 * "Pause on battery": where the Battery Status API exists (Chromium), the contribute loop stops when
 * the device leaves its charger and starts again when it is plugged back in, but only if it was this
 * watcher that stopped it.
 */
import { useSyncExternalStore } from 'react';
import { contributor, onContributorChange } from './contribute-store.ts';

/** The part of the Battery Status API's BatteryManager used here. */
export interface BatteryLike extends EventTarget {
  readonly charging: boolean;
}

export type BatteryAction = 'pause' | 'resume' | 'none';

/** What to do with the loop, given the setting, the charger and who stopped the loop. */
export function batteryAction(o: {
  enabled: boolean;
  charging: boolean;
  running: boolean;
  pausedByBattery: boolean;
}): BatteryAction {
  if (o.enabled && !o.charging && o.running) return 'pause';
  if (o.pausedByBattery && !o.running && (o.charging || !o.enabled)) return 'resume';
  return 'none';
}

interface BatteryState {
  supported: boolean;
  enabled: boolean;
  charging?: boolean;
  pausedByBattery: boolean;
}

let state: BatteryState = {
  supported: typeof navigator !== 'undefined' && 'getBattery' in navigator,
  enabled: false,
  pausedByBattery: false,
};
let battery: BatteryLike | undefined;
const listeners = new Set<() => void>();

function set(patch: Partial<BatteryState>) {
  state = { ...state, ...patch };
  for (const l of listeners) l();
}

/** Applies the rule to the current loop; called on charger changes, setting changes and loop changes. */
function apply() {
  const loop = contributor();
  if (!battery || !loop) return;
  const running = loop.state.status !== 'idle' && loop.state.status !== 'stopping';
  const action = batteryAction({
    enabled: state.enabled,
    charging: battery.charging,
    running,
    pausedByBattery: state.pausedByBattery,
  });
  if (action === 'pause') {
    set({ pausedByBattery: true });
    void loop.stop();
  } else if (action === 'resume') {
    set({ pausedByBattery: false });
    loop.start();
  }
}

async function watch(): Promise<void> {
  if (battery || !state.supported) return;
  const nav = navigator as Navigator & { getBattery(): Promise<BatteryLike> };
  battery = await nav.getBattery();
  set({ charging: battery.charging });
  battery.addEventListener('chargingchange', () => {
    set({ charging: battery?.charging });
    apply();
  });
  onContributorChange(apply);
}

export function setPauseOnBattery(enabled: boolean): void {
  set({ enabled });
  void watch().then(apply);
}

export function useBattery(): BatteryState {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => state,
  );
}
