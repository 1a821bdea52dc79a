import { realmPalette } from '../views/render.js';

/** Whose email it is: the realm's display name and its primary colour (`#rgb` / `#rrggbb`). */
export interface EmailBrand {
  name: string;
  primaryColor?: string;
}

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const URL_LINE = /^https?:\/\/\S+$/;
const CODE_LINE = /^ {4}(\d{6})$/;

/**
 * The HTML part of an email, made from its plain-text part (which stays the reference: every line of it
 * is here, in order): the realm's name in a bar of its colour, paragraphs as in the text, a line that is
 * a link as a button (with the address written out below it for clients that block buttons), and an
 * indented 6-digit code in large type. Everything from the text and the brand is escaped; the colours
 * come from parsed numbers only (realmPalette), so no input reaches the markup unescaped.
 */
export function htmlEmail(text: string, brand: EmailBrand): string {
  const palette = realmPalette(brand.primaryColor);
  const name = escapeHtml(brand.name);
  const blocks = text.split(/\n{2,}/).map((block) => {
    const lines = block.split('\n');
    return lines
      .map((line) => {
        const code = CODE_LINE.exec(line);
        if (code) return `<p style="font-size:28px;letter-spacing:6px;font-family:ui-monospace,Menlo,Consolas,monospace;font-weight:bold;margin:16px 0">${code[1]}</p>`;
        if (URL_LINE.test(line)) {
          const href = escapeHtml(line);
          return (
            `<p style="margin:16px 0"><a href="${href}" style="display:inline-block;padding:10px 18px;border-radius:6px;background:${palette.primary};color:${palette.onPrimary};text-decoration:none;font-weight:bold">Open the link</a></p>` +
            `<p style="margin:0 0 12px;font-size:13px;color:#555;word-break:break-all">Or copy this address into your browser: <a href="${href}" style="color:${palette.primaryText}">${href}</a></p>`
          );
        }
        return `<p style="margin:0 0 8px">${escapeHtml(line)}</p>`;
      })
      .join('\n');
  });
  return [
    '<!DOCTYPE html>',
    `<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${name}</title></head>`,
    '<body style="margin:0;padding:0;background:#f4f5f7;font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;color:#111418;line-height:1.5">',
    '<div role="article" style="max-width:560px;margin:24px auto;background:#ffffff;border-radius:8px;overflow:hidden;border:1px solid #dde1e6">',
    `<div style="background:${palette.primary};color:${palette.onPrimary};padding:14px 24px;font-size:18px;font-weight:bold">${name}</div>`,
    `<div style="padding:20px 24px">${blocks.join('\n<div style="height:8px"></div>\n')}</div>`,
    '</div>',
    '</body></html>',
  ].join('\n');
}
