import { SMTPServer } from 'smtp-server';
import { freePort } from './server.js';

/** One received email: its recipients, subject and plain-text body (quoted-printable decoded). */
export interface Mail {
  to: string;
  subject: string;
  text: string;
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
        const quoted = /content-transfer-encoding:\s*quoted-printable/i.test(headers);
        const text = quoted ? body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))) : body;
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address).join(','), subject: /^subject:\s*(.*)$/im.exec(headers)?.[1] ?? '', text: text.replace(/\r\n/g, '\n') });
        callback();
      });
    },
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { url: `smtp://127.0.0.1:${port}`, mails, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

