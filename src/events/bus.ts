import { EventEmitter } from 'node:events';

export interface SignInEvent {
  type: 'signin.success' | 'signin.failure';
  at: string;
  realm: string;
  issuer: string;
  method: 'password' | 'passkey' | 'security-key' | 'totp' | 'recovery-code' | 'session' | 'federated';
  /** For `federated`: the connection (upstream identity provider) used. */
  connectionId?: string;
  /** Why a sign-in failed: invalid_credentials, throttled, account_disabled, invalid_input. */
  reason?: string;
  clientId?: string;
  /** Set on success only, so failures never reveal which emails have accounts. */
  userId?: string;
  address: string;
  userAgent?: string;
}

export type LatchkeyEvent = SignInEvent;

/** In-process event bus; the audit capability (a later issue) subscribes to persist and stream events. */
export class EventBus {
  readonly #emitter = new EventEmitter();

  emit(event: LatchkeyEvent): void {
    this.#emitter.emit(event.type, event);
    this.#emitter.emit('*', event);
  }

  on(type: LatchkeyEvent['type'] | '*', listener: (event: LatchkeyEvent) => void): () => void {
    this.#emitter.on(type, listener);
    return () => this.#emitter.off(type, listener);
  }
}
