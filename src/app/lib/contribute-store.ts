/**
 * The page's one contribute session, kept outside React so it keeps running while the user looks at
 * other pages, and so the session key lives exactly as long as the tab.
 */
import { useSyncExternalStore } from 'react';
import type { Contributor, ContributorSnapshot } from './contributor.ts';

let current: Contributor | undefined;
let snapshot: ContributorSnapshot | undefined;
let unsubscribe: (() => void) | undefined;
let dutyCycle = 1;
const listeners = new Set<() => void>();

function emit() {
  for (const l of listeners) l();
}

export function setContributor(next: Contributor): void {
  unsubscribe?.();
  current = next;
  unsubscribe = next.subscribe((s) => {
    snapshot = s;
    emit();
  });
}

export function contributor(): Contributor | undefined {
  return current;
}

export function getDutyCycle(): number {
  return dutyCycle;
}

export function setDutyCycle(value: number): void {
  dutyCycle = value;
  emit();
}

export function useContributor(): { snapshot?: ContributorSnapshot; dutyCycle: number } {
  const s = useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => snapshot,
  );
  const d = useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => dutyCycle,
  );
  return { snapshot: s, dutyCycle: d };
}
