import { EventEmitter } from 'node:events';

export interface SignInEvent {
  type: 'signin.success' | 'signin.failure';
  at: string;
  realm: string;
  issuer: string;
  method: 'password' | 'passkey' | 'security-key' | 'totp' | 'recovery-code' | 'session' | 'federated' | 'device-code';
  /** For `federated`: the connection (upstream identity provider) used. */
  connectionId?: string;
  /** Why a sign-in failed: invalid_credentials, throttled, account_disabled, invalid_input; for `device-code`: invalid_user_code, expired_user_code, used_user_code, user_denied. */
  reason?: string;
  clientId?: string;
  /** Set on success only, so failures never reveal which emails have accounts. */
  userId?: string;
  address: string;
  userAgent?: string;
}

export type LatchkeyEvent = SignInEvent;

/** Told when a listener throws or its promise rejects (the server logs it). */
export type ListenerFailure = (err: unknown, event: LatchkeyEvent) => void;

/**
 * In-process event bus; the audit capability (a later issue) subscribes to persist and stream events.
 * A listener runs inside the sign-in that emits: one that throws (or returns a promise that rejects)
 * is reported to `onListenerError` and the sign-in, and the other listeners, carry on.
 */
export class EventBus {
  readonly #emitter = new EventEmitter();

  constructor(private readonly onListenerError: ListenerFailure = () => {}) {}

  emit(event: LatchkeyEvent): void {
    this.#emitter.emit(event.type, event);
    this.#emitter.emit('*', event);
  }

  on(type: LatchkeyEvent['type'] | '*', listener: (event: LatchkeyEvent) => unknown): () => void {
    const guarded = (event: LatchkeyEvent) => {
      try {
        const result = listener(event);
        if (result instanceof Promise) result.then(undefined, (err: unknown) => this.#failed(err, event));
      } catch (err) {
        this.#failed(err, event);
      }
    };
    this.#emitter.on(type, guarded);
    return () => this.#emitter.off(type, guarded);
  }

  #failed(err: unknown, event: LatchkeyEvent): void {
    try {
      this.onListenerError(err, event);
    } catch {
      // the reporter itself failing must not break the sign-in either
    }
  }
}
