import type { ReactNode } from 'react';

/**
 * A table that may scroll sideways on a narrow screen: a labelled region keyboard users can focus and
 * scroll with the arrow keys (WCAG "scrollable region must be focusable").
 */
export function ScrollRegion({ label, children }: { label: string; children: ReactNode }) {
  return (
    // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable region must be reachable by keyboard.
    <section className="table-wrap" aria-label={label} tabIndex={0}>
      {children}
    </section>
  );
}
