/**
 * `keep_warm` windows (docs/lifecycle-policies.md): when a service is started and never
 * idle-stopped. Pure: parsing and local-time arithmetic only; the timers live in
 * services/keep-warm-schedule.ts.
 *
 * A window is `[DAYS ]HH:MM-HH:MM`, in the gateway's local time:
 * - DAYS: comma-separated days or day ranges, `Mon-Fri`, `Sat,Sun`, `Mon,Wed-Fri`; English
 *   three-letter or full names, any case; omitted (or `daily`) = every day. A range may wrap
 *   (`Fri-Mon`).
 * - HH:MM-HH:MM: start and end; `24:00` is the end of the day. An end at or before the start
 *   crosses midnight (`Fri 22:00-02:00` runs Friday 22:00 to Saturday 02:00). Start = end is
 *   an error (say `00:00-24:00` for all day).
 */

const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
const FULL_NAMES = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'] as const;

export interface KeepWarmWindow {
  /** As written in the config (status shows it). */
  text: string;
  /** Days (0 = Sunday … 6 = Saturday) on which the window starts. */
  days: ReadonlySet<number>;
  /** Minutes after local midnight. */
  startMin: number;
  /** Length in minutes (1 … 1440). */
  lengthMin: number;
}

export type WindowParse = { ok: true; window: KeepWarmWindow } | { ok: false; error: string };

const FORMAT = 'expected "[DAYS ]HH:MM-HH:MM", e.g. "Mon-Fri 08:00-18:00" or "Sat,Sun 10:00-14:00"';

function dayOf(name: string): number | null {
  const n = name.toLowerCase();
  const short = DAY_NAMES.indexOf(n as (typeof DAY_NAMES)[number]);
  if (short >= 0) return short;
  const full = FULL_NAMES.indexOf(n as (typeof FULL_NAMES)[number]);
  return full >= 0 ? full : null;
}

function minutesOf(hhmm: string, allow24: boolean): number | null {
  const m = /^(\d{1,2}):(\d{2})$/.exec(hhmm);
  if (!m) return null;
  const h = Number(m[1]);
  const min = Number(m[2]);
  if (min > 59) return null;
  if (h === 24 && min === 0 && allow24) return 1440;
  if (h > 23) return null;
  return h * 60 + min;
}

function parseDays(spec: string): Set<number> | string {
  if (spec.toLowerCase() === 'daily') return new Set([0, 1, 2, 3, 4, 5, 6]);
  const days = new Set<number>();
  for (const part of spec.split(',')) {
    const [a, b, ...rest] = part.split('-');
    if (a === undefined || rest.length > 0) return `'${part}' is not a day or a day range`;
    const from = dayOf(a.trim());
    if (from === null) return `'${a.trim()}' is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)`;
    if (b === undefined) {
      days.add(from);
      continue;
    }
    const to = dayOf(b.trim());
    if (to === null) return `'${b.trim()}' is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)`;
    for (let d = from; ; d = (d + 1) % 7) {
      days.add(d);
      if (d === to) break;
    }
  }
  return days;
}

/** One window from its text, or an error sentence naming what is wrong. */
export function parseKeepWarmWindow(text: string): WindowParse {
  const trimmed = text.trim();
  // The hours are the last word (days may contain `-` too: "Mon-Fri 08:00-18:00").
  const timeMatch = /^(?:(.+?)\s+)?(\d{1,2}:\d{2})-(\d{1,2}:\d{2})$/.exec(trimmed);
  if (!timeMatch) return { ok: false, error: `is not a keep-warm window: ${JSON.stringify(text)}; ${FORMAT}` };
  const [, daySpec, startText, endText] = timeMatch as unknown as [string, string | undefined, string, string];
  const startMin = minutesOf(startText, false);
  if (startMin === null)
    return {
      ok: false,
      error: `has an invalid start time '${startText}' in ${JSON.stringify(text)} (HH:MM, 00:00-23:59)`,
    };
  const endMin = minutesOf(endText, true);
  if (endMin === null)
    return { ok: false, error: `has an invalid end time '${endText}' in ${JSON.stringify(text)} (HH:MM, 00:00-24:00)` };
  if (endMin === startMin)
    return {
      ok: false,
      error: `is empty: ${JSON.stringify(text)} starts and ends at the same time (use 00:00-24:00 for all day)`,
    };
  const days = daySpec === undefined ? new Set([0, 1, 2, 3, 4, 5, 6]) : parseDays(daySpec.trim());
  if (typeof days === 'string') return { ok: false, error: `has bad days in ${JSON.stringify(text)}: ${days}` };
  const lengthMin = endMin > startMin ? endMin - startMin : endMin + 1440 - startMin;
  return { ok: true, window: { text: trimmed, days, startMin, lengthMin } };
}

/** Parse windows known to be valid (validated with the config); invalid ones are skipped. */
export function parseKeepWarmWindows(texts: readonly string[]): KeepWarmWindow[] {
  const out: KeepWarmWindow[] = [];
  for (const t of texts) {
    const r = parseKeepWarmWindow(t);
    if (r.ok) out.push(r.window);
  }
  return out;
}

/** Local start (epoch ms) of the window's occurrence that begins on the local day of `dayStart`. */
function occurrenceStart(dayStart: Date, w: KeepWarmWindow): number {
  return new Date(dayStart.getFullYear(), dayStart.getMonth(), dayStart.getDate(), 0, w.startMin).getTime();
}

/** The occurrences of `w` that begin on the local days from `now`'s day - 1 to + 8: [start, end). */
function occurrences(w: KeepWarmWindow, now: number): Array<[number, number]> {
  const base = new Date(now);
  const out: Array<[number, number]> = [];
  for (let k = -1; k <= 8; k++) {
    const day = new Date(base.getFullYear(), base.getMonth(), base.getDate() + k);
    if (!w.days.has(day.getDay())) continue;
    const start = occurrenceStart(day, w);
    // The end in local time too (a DST change inside the window moves it by the clock, not by 60 s * n).
    const end = new Date(day.getFullYear(), day.getMonth(), day.getDate(), 0, w.startMin + w.lengthMin).getTime();
    out.push([start, end]);
  }
  return out;
}

/** The window that covers `now` (the first listed when several do), with when it ends; null when none. */
export function activeKeepWarmWindow(
  windows: readonly KeepWarmWindow[],
  now: number,
): { window: KeepWarmWindow; until: number } | null {
  for (const w of windows)
    for (const [start, end] of occurrences(w, now)) if (start <= now && now < end) return { window: w, until: end };
  return null;
}

/** The next time after `now` at which any window starts or ends (null without windows). */
export function nextKeepWarmChange(windows: readonly KeepWarmWindow[], now: number): number | null {
  let next: number | null = null;
  for (const w of windows)
    for (const [start, end] of occurrences(w, now))
      for (const t of [start, end]) if (t > now && (next === null || t < next)) next = t;
  return next;
}

/** The next time after `now` at which a window starts (for status). */
export function nextKeepWarmStart(windows: readonly KeepWarmWindow[], now: number): number | null {
  let next: number | null = null;
  for (const w of windows)
    for (const [start] of occurrences(w, now)) if (start > now && (next === null || start < next)) next = start;
  return next;
}
