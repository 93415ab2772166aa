/**
 * The page's one contribute session, kept outside React so it keeps running while the user looks at
 * other pages, and so the session key lives exactly as long as the tab.
 *
 * The loop publishes a snapshot on every progress message from the Worker; React sees at most one of
 * them per animation frame and per RENDER_EVERY_MS, so a render never competes with the next one for the
 * main thread. While the tab is hidden no frame runs and nothing renders; the loop itself carries on.
 */
import { useSyncExternalStore } from 'react';
import type { Contributor, ContributorSnapshot } from './contributor.ts';

/** Slowest acceptable progress display; the Worker reports far more often. */
const RENDER_EVERY_MS = 250;
/** Default share of time spent computing: half, so a laptop stays cool and responsive. */
export const DEFAULT_DUTY_CYCLE = 0.5;

let current: Contributor | undefined;
/** What React renders: the loop's latest snapshot as of the last flush. */
let snapshot: ContributorSnapshot | undefined;
let latest: ContributorSnapshot | undefined;
let unsubscribe: (() => void) | undefined;
let dutyCycle = DEFAULT_DUTY_CYCLE;
let flushScheduled = false;
let lastFlush = Number.NEGATIVE_INFINITY;
const listeners = new Set<() => void>();
const loopListeners = new Set<() => void>();

function emit() {
  for (const l of listeners) l();
}

function flush() {
  flushScheduled = false;
  lastFlush = performance.now();
  snapshot = latest;
  emit();
}

/** One render per animation frame, at most every RENDER_EVERY_MS, whatever the Worker's message rate. */
function scheduleFlush() {
  if (flushScheduled) return;
  flushScheduled = true;
  const delay = Math.max(0, lastFlush + RENDER_EVERY_MS - performance.now());
  setTimeout(() => requestAnimationFrame(flush), delay);
}

export function setContributor(next: Contributor): void {
  unsubscribe?.();
  current = next;
  unsubscribe = next.subscribe((s) => {
    latest = s;
    scheduleFlush();
    for (const l of loopListeners) l();
  });
}

/** Called on every change of the loop's state, undelayed (for watchers, not for rendering). */
export function onContributorChange(listener: () => void): () => void {
  loopListeners.add(listener);
  return () => loopListeners.delete(listener);
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

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/**
 * A part of the loop's snapshot as last shown: the component re-renders only when that part changes
 * (`select` must return a primitive or a reference taken from the snapshot).
 */
export function useContributorState<T>(select: (s: ContributorSnapshot | undefined) => T): T {
  return useSyncExternalStore(subscribe, () => select(snapshot));
}

export function useDutyCycle(): number {
  return useSyncExternalStore(subscribe, () => dutyCycle);
}
