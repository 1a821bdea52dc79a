import nodemailer from 'nodemailer';
import { htmlEmail, type EmailBrand } from './html.js';

/**
 * One email. The plain text is what it says; with a `brand`, an HTML part made from that text (the
 * realm's name and colour) goes along as the alternative mail clients show by default.
 */
export interface Email {
  to: string;
  subject: string;
  text: string;
  brand?: EmailBrand;
}

export interface Mailer {
  /** Whether an SMTP server is configured: without one, nothing that needs email is offered. */
  readonly enabled: boolean;
  /** Sends one email; rejects with the SMTP error (never logged with the message's content). */
  send(email: Email): Promise<void>;
  close(): void;
}

/**
 * Outgoing email through SMTP (nodemailer). `smtpUrl` is `smtp://user:pass@host:587` (STARTTLS when the
 * server offers it) or `smtps://...:465` (TLS from the start); without it the mailer is disabled.
 */
export function createMailer(options: { smtpUrl?: string; from: string }): Mailer {
  if (!options.smtpUrl) {
    return {
      enabled: false,
      send: async () => {
        throw new Error('email is not configured (set email.smtpUrl or LATCHKEY_SMTP_URL)');
      },
      close: () => {},
    };
  }
  const transport = nodemailer.createTransport(options.smtpUrl, { from: options.from });
  return {
    enabled: true,
    async send(email) {
      await transport.sendMail({ from: options.from, to: email.to, subject: email.subject, text: email.text, ...(email.brand ? { html: htmlEmail(email.text, email.brand) } : {}) });
    },
    close: () => transport.close(),
  };
}
