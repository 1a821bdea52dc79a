import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { expect } from 'vitest';
import { watchConsole } from './browser.js';

/*
 * Automated accessibility checks of a page in Chromium: axe-core's WCAG 2.1 A/AA rules, in the light
 * and the dark colour scheme, and a keyboard walk that checks every Tab stop shows a focus indicator.
 * Each check returns a list of problems (empty when the page passes), worded so a failing test names
 * the page, the rule and the elements.
 */

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** The WCAG 2.0 and 2.1 success criteria at levels A and AA (axe's tags); no rule is switched off. */
export const WCAG_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

interface Violation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: string; summary: string }>;
}

/**
 * Runs axe-core on the page as it is now. The source is evaluated through the DevTools protocol
 * (page.evaluate), which the pages' Content-Security-Policy does not govern, so the pages keep their
 * real CSP while they are checked.
 */
export async function axeViolations(page: Page): Promise<Violation[]> {
  if (!(await page.evaluate(() => typeof (window as any).axe === 'object'))) await page.evaluate(AXE_SOURCE);
  return page.evaluate(async (tags) => {
    const results = await (window as any).axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] });
    return results.violations.map((v: any) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n: any) => ({ target: n.target.join(' '), summary: String(n.failureSummary ?? '').replace(/\s+/g, ' ').trim() })),
    }));
  }, WCAG_TAGS);
}

/** axe in the light and in the dark colour scheme; one line per violation and failing element. */
export async function accessibilityProblems(page: Page, label: string): Promise<string[]> {
  const problems: string[] = [];
  for (const colorScheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme });
    for (const v of await axeViolations(page)) {
      for (const n of v.nodes) problems.push(`${label} (${colorScheme}): ${v.id} [${v.impact}] ${v.help}: ${n.target} (${n.summary})`);
    }
  }
  await page.emulateMedia({ colorScheme: 'light' });
  return problems;
}

/** What the keyboard focus is on: a short description, and whether its focus indicator can be seen. */
interface FocusStop {
  what: string;
  text: string;
  inPage: boolean;
  focusVisible: boolean;
  indicator: string;
  /** Contrast of the outline's colour against the background behind the element (0 without an outline). */
  ringContrast: number;
}

const focusStop = (page: Page): Promise<FocusStop> =>
  page.evaluate(() => {
    const el = document.activeElement as HTMLElement | null;
    if (!el || el === document.body || el === document.documentElement) return { what: 'body', text: '', inPage: false, focusVisible: false, indicator: '', ringContrast: 0 };
    const rgb = (c: string) => (/rgba?\(([^)]+)\)/.exec(c)?.[1] ?? '0,0,0,0').split(/[\s,/]+/).filter(Boolean).map(Number);
    const lum = ([r, g, b]: number[]) =>
      [r!, g!, b!].map((v) => (v / 255 <= 0.04045 ? v / 255 / 12.92 : ((v / 255 + 0.055) / 1.055) ** 2.4)).reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i]!, 0);
    let bg = [255, 255, 255];
    for (let n: Element | null = el.parentElement; n; n = n.parentElement) {
      const c = rgb(getComputedStyle(n).backgroundColor);
      if (c.length < 4 || c[3]! > 0) {
        bg = c;
        break;
      }
    }
    const s = getComputedStyle(el);
    const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2;
    const shadow = s.boxShadow !== 'none';
    const [hi, lo] = [lum(rgb(s.outlineColor)), lum(bg)].sort((a, b) => b - a) as [number, number];
    const label = el.getAttribute('aria-label') ?? (el instanceof HTMLInputElement ? (el.labels?.[0]?.textContent ?? el.name) : el.textContent ?? '');
    return {
      what: `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}${el.className && typeof el.className === 'string' ? `.${el.className.trim().split(/\s+/).join('.')}` : ''}`,
      text: label.replace(/\s+/g, ' ').trim(),
      inPage: true,
      focusVisible: el.matches(':focus-visible'),
      indicator: outline ? `outline ${s.outlineWidth} ${s.outlineStyle} ${s.outlineColor}` : shadow ? `box-shadow ${s.boxShadow}` : 'none',
      ringContrast: outline ? Math.round(((hi + 0.05) / (lo + 0.05)) * 100) / 100 : 0,
    };
  });

/**
 * Walks the page with Tab from its top: `mainAction` (the text of the page's main button or link)
 * must be reached, and every element focused on the way and after it must show a focus indicator
 * (an outline of at least 2px in a colour with 3:1 contrast against what is behind it, WCAG 1.4.11,
 * or a box-shadow). Returns the problems found.
 */
export async function keyboardProblems(page: Page, label: string, mainAction: string | RegExp): Promise<string[]> {
  const problems: string[] = [];
  // start where a keyboard user starts after loading the page and clicking nowhere in particular:
  // the top of the document (a click on the page background moves the Tab starting point there)
  await page.mouse.click(1, 1);
  const matches = (text: string) => (typeof mainAction === 'string' ? text === mainAction : mainAction.test(text));
  let reached = false;
  const seen = new Set<string>();
  for (let i = 0; i < 40; i++) {
    await page.keyboard.press('Tab');
    const stop = await focusStop(page);
    if (!stop.inPage) break;
    const key = `${stop.what}|${stop.text}`;
    if (seen.has(key)) break;
    seen.add(key);
    if (matches(stop.text)) reached = true;
    if (!stop.focusVisible) problems.push(`${label}: Tab stop ${stop.what} "${stop.text}" does not match :focus-visible`);
    if (stop.indicator === 'none') problems.push(`${label}: Tab stop ${stop.what} "${stop.text}" has no visible focus indicator (no outline, no box-shadow)`);
    else if (stop.indicator.startsWith('outline') && stop.ringContrast < 3) problems.push(`${label}: Tab stop ${stop.what} "${stop.text}" has a focus ring of too little contrast (${stop.ringContrast}:1 < 3:1, ${stop.indicator})`);
  }
  if (!reached) problems.push(`${label}: the main action "${String(mainAction)}" is not reached with Tab (stops: ${[...seen].join(', ')})`);
  return problems;
}

/**
 * Reflow (WCAG 1.4.10): at 320 CSS pixels wide, what 1280 pixels at 400% zoom give, the page must
 * not scroll sideways. Names the elements that stick out on the right.
 */
export async function reflowProblems(page: Page, label: string): Promise<string[]> {
  const before = page.viewportSize();
  await page.setViewportSize({ width: 320, height: 640 });
  try {
    const wide = await page.evaluate(() => {
      const width = document.documentElement.clientWidth;
      if (document.documentElement.scrollWidth <= width) return [];
      const out: string[] = [];
      for (const el of Array.from(document.body.querySelectorAll('*'))) {
        const r = el.getBoundingClientRect();
        if (r.width > 0 && r.right > width + 0.5 && !(el.parentElement && el.parentElement.getBoundingClientRect().right > width + 0.5)) {
          out.push(`${el.tagName.toLowerCase()}${el.className && typeof el.className === 'string' ? `.${el.className.trim().split(/\s+/).join('.')}` : ''} (right edge at ${Math.round(r.right)}px)`);
        }
      }
      return [`the page is ${document.documentElement.scrollWidth}px wide in a ${width}px window: ${out.join(', ')}`];
    });
    return wide.map((w) => `${label} (320px wide): ${w}`);
  } finally {
    if (before) await page.setViewportSize(before);
  }
}

/**
 * Checkboxes and radio buttons drawn in an accent colour: when ticked, that colour is what shows their
 * state, so it needs 3:1 against the background behind them (WCAG 1.4.11). Names those that lack it.
 */
export async function controlColourProblems(page: Page, label: string): Promise<string[]> {
  const weak = await page.evaluate(() => {
    const rgb = (c: string) => (/rgba?\(([^)]+)\)/.exec(c)?.[1] ?? '').split(/[\s,/]+/).filter(Boolean).map(Number);
    const lum = ([r, g, b]: number[]) =>
      [r!, g!, b!].map((v) => (v / 255 <= 0.04045 ? v / 255 / 12.92 : ((v / 255 + 0.055) / 1.055) ** 2.4)).reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i]!, 0);
    const out: string[] = [];
    for (const el of Array.from(document.querySelectorAll<HTMLInputElement>('input[type="checkbox"], input[type="radio"]'))) {
      const accent = rgb(getComputedStyle(el).accentColor);
      if (accent.length < 3 || !el.getClientRects().length) continue; // "auto": the browser's own colour
      let bg = [255, 255, 255];
      for (let n: Element | null = el.parentElement; n; n = n.parentElement) {
        const c = rgb(getComputedStyle(n).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3]! > 0)) {
          bg = c;
          break;
        }
      }
      const [hi, lo] = [lum(accent), lum(bg)].sort((a, b) => b - a) as [number, number];
      const ratio = Math.round(((hi + 0.05) / (lo + 0.05)) * 100) / 100;
      if (ratio < 3) out.push(`input#${el.id} (${el.type}) accent-color ${getComputedStyle(el).accentColor} on ${`rgb(${bg.slice(0, 3).join(', ')})`}: ${ratio}:1 < 3:1`);
    }
    return out;
  });
  return weak.map((w) => `${label}: ${w}`);
}

/** All the checks of one page: axe, the keyboard walk and the controls' accent colour in both colour schemes, and reflow at 320px. */
export async function pageProblems(page: Page, label: string, mainAction: string | RegExp): Promise<string[]> {
  const problems = await accessibilityProblems(page, label);
  for (const colorScheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme });
    problems.push(...(await keyboardProblems(page, `${label} (${colorScheme})`, mainAction)));
    problems.push(...(await controlColourProblems(page, `${label} (${colorScheme})`)));
  }
  await page.emulateMedia({ colorScheme: 'light' });
  return [...problems, ...(await reflowProblems(page, label))];
}

/** A page for a walk through the pages with the keyboard, with what the walk found. */
export interface WalkedPage {
  context: BrowserContext;
  page: Page;
  /** What the checks found on the way. */
  problems: string[];
  /**
   * Checks `on` (this page or another of the context) as it is now: all of `pageProblems` (axe, the
   * keyboard walk to `mainAction`, control colours, reflow) or, without a main action, axe alone.
   */
  check(on: Page, label: string, mainAction?: string | RegExp): Promise<void>;
  /** Expects no problems, no CSP violation and no console error on `page`, then closes the context. */
  finish(): Promise<void>;
}

/** A fresh context (1000x900, en-US, reduced motion) and page, 15 s a step, its console watched. */
export async function walkedPage(browser: Browser): Promise<WalkedPage> {
  const context = await browser.newContext({ viewport: { width: 1000, height: 900 }, locale: 'en-US', reducedMotion: 'reduce' });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const seen = watchConsole(page);
  const problems: string[] = [];
  return {
    context,
    page,
    problems,
    async check(on, label, mainAction) {
      problems.push(...(mainAction === undefined ? await accessibilityProblems(on, label) : await pageProblems(on, label, mainAction)));
    },
    async finish() {
      expect(problems).toEqual([]);
      expect([...seen.cspViolations, ...seen.errors]).toEqual([]);
      await context.close();
    },
  };
}
