import { SMTPServer } from 'smtp-server';
import { freePort } from './server.js';

/** One received email: its recipients, subject, plain-text body and HTML part if any (transfer encodings decoded). */
export interface Mail {
  to: string;
  subject: string;
  text: string;
  html?: string;
}

/** A MIME part's body, decoded by its Content-Transfer-Encoding (quoted-printable, base64 or as is). */
function decodeBody(headers: string, body: string): string {
  if (/content-transfer-encoding:\s*quoted-printable/i.test(headers)) {
    const bytes = body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
    return Buffer.from(bytes, 'latin1').toString('utf8');
  }
  if (/content-transfer-encoding:\s*base64/i.test(headers)) return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  return body;
}

/** The text/plain and text/html parts of a message (one part, or multipart/alternative). */
function partsOf(headers: string, body: string): { text: string; html?: string } {
  const boundary = /content-type:\s*multipart\/[a-z]+;[^\r\n]*boundary="?([^";\r\n]+)"?/i.exec(headers)?.[1];
  if (!boundary) return { text: decodeBody(headers, body) };
  const out: { text: string; html?: string } = { text: '' };
  for (const part of body.split(`--${boundary}`).slice(1)) {
    if (part.startsWith('--')) break;
    const split = part.indexOf('\r\n\r\n');
    if (split < 0) continue;
    const partHeaders = part.slice(0, split).replace(/\r\n[ \t]+/g, ' ');
    const partBody = part.slice(split + 4).replace(/\r\n$/, '');
    if (/content-type:\s*text\/html/i.test(partHeaders)) out.html = decodeBody(partHeaders, partBody);
    else if (/content-type:\s*text\/plain/i.test(partHeaders)) out.text = decodeBody(partHeaders, partBody);
  }
  return out;
}

export interface Mailbox {
  /** `smtp://127.0.0.1:<port>`, for `email.smtpUrl`. */
  url: string;
  mails: Mail[];
  close(): Promise<void>;
}

/** A real SMTP server on a free port that keeps every message it receives. */
export async function mailbox(): Promise<Mailbox> {
  const mails: Mail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      let raw = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => (raw += chunk));
      stream.on('end', () => {
        const split = raw.indexOf('\r\n\r\n');
        const headers = raw.slice(0, split).replace(/\r\n[ \t]+/g, ' ');
        const body = raw.slice(split + 4);
        const { text, html } = partsOf(headers, body);
        mails.push({
          to: session.envelope.rcptTo.map((r) => r.address).join(','),
          subject: /^subject:\s*(.*)$/im.exec(headers)?.[1] ?? '',
          text: text.replace(/\r\n/g, '\n'),
          ...(html === undefined ? {} : { html: html.replace(/\r\n/g, '\n') }),
        });
        callback();
      });
    },
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { url: `smtp://127.0.0.1:${port}`, mails, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

