/** What the pages and the user service accept as an email address: something@domain.tld, no spaces or control characters. */
export const EMAIL_ADDRESS = /^[^\s@\p{Cc}]+@[^\s@\p{Cc}]+\.[^\s@\p{Cc}]+$/u;

/** The longest email address accepted (RFC 5321's path limit, rounded as the sign-in pages always had it). */
export const MAX_EMAIL_LENGTH = 320;
