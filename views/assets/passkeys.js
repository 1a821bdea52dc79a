/*
 * Latchkey — passkey (WebAuthn) ceremonies for the server-rendered pages.
 *
 * Plain browser JavaScript, no build step. Load it after @simplewebauthn/browser's UMD bundle
 * (which defines the global `SimpleWebAuthnBrowser`):
 *   <script src="/assets/simplewebauthn-browser.js" defer></script>
 *   <script src="/assets/passkeys.js" defer></script>
 * It defines no globals of its own. Everything is driven by attributes the server renders:
 *
 * On the page's <main> element:
 *   data-lk-csrf              CSRF token, sent as the x-csrf-token header of every POST
 *   data-lk-passkey-options   sign-in: URL answering the authentication options (JSON)
 *   data-lk-passkey-verify    sign-in: URL checking the authenticator's answer
 *   data-lk-passkey-request   sign-in: first-factor options prepared with the page (JSON, optional)
 *   data-lk-conditional="true"  also offer passkeys in the username field's autofill
 *   data-lk-register-options  registration: URL answering the creation options (JSON)
 *   data-lk-register-verify   registration: URL checking the new credential
 * Elements:
 *   #lk-passkey-button   sign-in button (server renders it `hidden`; shown here when usable);
 *                        its data-lk-passkey-mode (default "button") is sent to the options URL
 *   #lk-passkey-create   registration button (also `hidden` until usable)
 *   #lk-passkey-name     optional input: its value is sent as `name` with a new credential
 *   #lk-error            the alert region errors are written to
 *   [data-lk-passkey-ui="signin" | "register"]  hidden extras shown with the matching button
 *   [data-lk-passkey-unsupported]  hidden notes shown when this browser cannot use passkeys
 *
 * Protocol (all POSTs: JSON body, same-origin credentials):
 *   sign-in       options <- { mode: "conditional" | "button" | "identified" | "second-factor" }
 *                 verify  <- { response: AuthenticationResponseJSON }
 *   registration  options <- {}
 *                 verify  <- { response: RegistrationResponseJSON, name?: string }
 *   The options URLs answer with the options JSON itself. A verify URL answers { redirect: url }
 *   (the browser goes there) or { reload: true }; errors are 4xx JSON
 *   { error, error_description } and error_description is shown to the user.
 */
(function () {
  'use strict';

  var MESSAGES = {
    notAllowed: 'The passkey request was cancelled or timed out. Try again.',
    alreadyRegistered: 'This authenticator is already registered.',
    generic: 'Something went wrong with the passkey. Try again.',
  };
  /** Conditional requests restarted after failures at most this many times per page view. */
  var MAX_CONDITIONAL_RESTARTS = 5;

  var lib = window.SimpleWebAuthnBrowser;
  var main = document.querySelector('main');
  if (!main) return;

  function attr(name) {
    var value = main.getAttribute(name);
    return value && value.trim() ? value.trim() : undefined;
  }

  var csrf = attr('data-lk-csrf') || '';
  var signIn = { options: attr('data-lk-passkey-options'), verify: attr('data-lk-passkey-verify') };
  var register = { options: attr('data-lk-register-options'), verify: attr('data-lk-register-verify') };
  var signInButton = document.getElementById('lk-passkey-button');
  var createButton = document.getElementById('lk-passkey-create');
  var nameInput = document.getElementById('lk-passkey-name');

  var supported = false;
  try {
    supported = Boolean(lib && typeof lib.browserSupportsWebAuthn === 'function' && lib.browserSupportsWebAuthn());
  } catch (e) {
    supported = false;
  }

  /** True while a ceremony started by a button (or a chosen autofill passkey) is being handled. */
  var busy = false;

  // ---- Alert region --------------------------------------------------------------------------

  function errorRegion() {
    var region = document.getElementById('lk-error');
    if (region) return region;
    region = document.createElement('div');
    region.id = 'lk-error';
    region.className = 'lk-alert';
    region.setAttribute('role', 'alert');
    var heading = main.querySelector('h1');
    if (heading && heading.parentNode) heading.parentNode.insertBefore(region, heading.nextSibling);
    else main.insertBefore(region, main.firstChild);
    return region;
  }

  function showError(message) {
    var region = errorRegion();
    var p = document.createElement('p');
    p.textContent = message;
    region.replaceChildren(p);
    region.hidden = false;
    region.removeAttribute('hidden');
  }

  function clearError() {
    var region = document.getElementById('lk-error');
    if (region) region.replaceChildren();
  }

  // ---- Server calls --------------------------------------------------------------------------

  /** An error answer from the server; its message is meant for the user. */
  function ServerError(message) {
    this.name = 'ServerError';
    this.message = message;
  }
  ServerError.prototype = Object.create(Error.prototype);
  ServerError.prototype.constructor = ServerError;

  function postJSON(url, body) {
    return fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', accept: 'application/json', 'x-csrf-token': csrf },
      body: JSON.stringify(body),
    }).then(function (res) {
      return res
        .json()
        .catch(function () {
          return undefined;
        })
        .then(function (data) {
          if (!res.ok) {
            // e.g. the account page asking for a fresh sign-in: go where the server says (same site only)
            if (res.status === 401 && data && typeof data.redirect === 'string' && /^\/(?!\/)/.test(data.redirect)) {
              window.location.assign(data.redirect);
            }
            var description = data && typeof data.error_description === 'string' && data.error_description.trim();
            throw new ServerError(description || MESSAGES.generic);
          }
          if (!data || typeof data !== 'object') throw new ServerError(MESSAGES.generic);
          return data;
        });
    });
  }

  /**
   * Whether this browser supports WebAuthn Related Origin Requests: the server then uses the realm's
   * primary domain as RP ID on every domain; otherwise each domain keeps passkeys of its own.
   */
  var relatedOriginsSupport = (function () {
    try {
      if (window.PublicKeyCredential && typeof window.PublicKeyCredential.getClientCapabilities === 'function') {
        return window.PublicKeyCredential.getClientCapabilities().then(
          function (caps) {
            return Boolean(caps && caps.relatedOrigins);
          },
          function () {
            return false;
          },
        );
      }
    } catch (e) {
      /* older browsers */
    }
    return Promise.resolve(false);
  })();

  /**
   * The first-factor options the sign-in page came with (data-lk-passkey-request): the first ceremony
   * (autofill, or the button) starts without a round trip. They serve until a response to them has
   * been posted, which spends their challenge; after that each ceremony asks for new options.
   */
  var prepared = (function () {
    var raw = attr('data-lk-passkey-request');
    if (!raw) return undefined;
    try {
      var parsed = JSON.parse(raw);
      return parsed && typeof parsed.challenge === 'string' ? parsed : undefined;
    } catch (e) {
      return undefined;
    }
  })();

  /** Options for a sign-in ceremony of this mode: the prepared ones while they last, else from the server. */
  function signInOptions(mode) {
    if (prepared && (mode === 'button' || mode === 'conditional')) return Promise.resolve(prepared);
    return postOptions(signIn.options, { mode: mode });
  }

  /** Posts a sign-in response; the prepared challenge is spent by it, whatever the outcome. */
  function verifySignIn(response) {
    prepared = undefined;
    return postJSON(signIn.verify, { response: response });
  }

  /** Ask for ceremony options, telling the server what this browser can do. */
  function postOptions(url, body) {
    return relatedOriginsSupport.then(function (ror) {
      body.relatedOrigins = ror;
      return postJSON(url, body);
    });
  }

  /** Act on a verify answer; true when the page is being left (keep the buttons disabled). */
  function follow(outcome) {
    if (outcome && typeof outcome.redirect === 'string' && outcome.redirect) {
      var target;
      try {
        target = new URL(outcome.redirect, window.location.href);
      } catch (e) {
        target = undefined;
      }
      if (target && (target.protocol === 'https:' || target.protocol === 'http:')) {
        window.location.assign(target.href);
        return true;
      }
      throw new ServerError(MESSAGES.generic);
    }
    if (outcome && outcome.reload === true) {
      window.location.reload();
      return true;
    }
    return false;
  }

  // ---- Errors --------------------------------------------------------------------------------

  function isAbort(err) {
    return Boolean(err) && (err.name === 'AbortError' || err.code === 'ERROR_CEREMONY_ABORTED');
  }

  function messageFor(err, kind) {
    if (err instanceof ServerError) return err.message;
    var name = err && err.name;
    if (name === 'NotAllowedError') return MESSAGES.notAllowed;
    if (name === 'InvalidStateError' && kind === 'register') return MESSAGES.alreadyRegistered;
    return MESSAGES.generic;
  }

  function report(err, kind) {
    if (isAbort(err)) return;
    if (!(err instanceof ServerError) && window.console) console.warn('[latchkey] passkey', kind, err);
    showError(messageFor(err, kind));
  }

  function setDisabled(button, disabled) {
    if (!button) return;
    button.disabled = disabled;
    if (disabled) button.setAttribute('aria-busy', 'true');
    else button.removeAttribute('aria-busy');
  }

  // ---- Conditional mediation (passkeys in the username field's autofill) ---------------------

  var conditional = {
    enabled: false,
    /** Bumped to invalidate the request in flight (cancelled, or replaced by a button). */
    generation: 0,
    /** The generation whose navigator.credentials.get() is pending, or 0. */
    pending: 0,
    restarts: 0,
  };

  function stopConditional() {
    conditional.generation += 1;
    if (conditional.pending) {
      conditional.pending = 0;
      try {
        lib.WebAuthnAbortService.cancelCeremony();
      } catch (e) {
        /* nothing to cancel */
      }
    }
  }

  function restartConditional() {
    if (!conditional.enabled || conditional.restarts >= MAX_CONDITIONAL_RESTARTS) return;
    conditional.restarts += 1;
    startConditional();
  }

  function startConditional() {
    if (!conditional.enabled || busy) return;
    stopConditional();
    var generation = conditional.generation;
    var current = function () {
      return generation === conditional.generation && !busy;
    };
    signInOptions('conditional')
      .then(function (optionsJSON) {
        if (!current()) return undefined;
        conditional.pending = generation;
        return lib.startAuthentication({ optionsJSON: optionsJSON, useBrowserAutofill: true }).then(
          function (response) {
            if (conditional.pending === generation) conditional.pending = 0;
            if (!current()) return undefined;
            // The user picked a passkey from the autofill list.
            busy = true;
            setDisabled(signInButton, true);
            clearError();
            return verifySignIn(response).then(
              function (outcome) {
                if (follow(outcome)) return;
                busy = false;
                setDisabled(signInButton, false);
              },
              function (err) {
                busy = false;
                setDisabled(signInButton, false);
                report(err, 'authenticate');
                restartConditional(); // a new challenge for the next try
              },
            );
          },
          function (err) {
            if (conditional.pending === generation) conditional.pending = 0;
            if (isAbort(err) || generation !== conditional.generation) return; // cancelled on purpose
            // The browser declined the autofill request (no passkeys for this site, the user dismissed
            // the prompt, or it lapsed while the page sat idle): no alarming message; the button and
            // the email form still work.
            // SecurityError: the RP ID is not allowed here (e.g. a related-origins list that could not be
            // fetched); autofill stays quiet, the button still reports it if the user asks for a passkey.
            if (err && (err.name === 'NotAllowedError' || err.name === 'SecurityError')) return;
            report(err, 'authenticate');
          },
        );
      })
      .catch(function (err) {
        // The options could not be fetched: the page still works without autofill.
        if (window.console) console.warn('[latchkey] passkey autofill unavailable', err);
      });
  }

  // ---- Button ceremonies ---------------------------------------------------------------------

  function signInWithButton() {
    if (busy) return;
    busy = true;
    stopConditional(); // only one WebAuthn request at a time
    setDisabled(signInButton, true);
    clearError();
    var mode = (signInButton.getAttribute('data-lk-passkey-mode') || '').trim() || 'button';
    signInOptions(mode)
      .then(function (optionsJSON) {
        return lib.startAuthentication({ optionsJSON: optionsJSON });
      })
      .then(function (response) {
        return verifySignIn(response);
      })
      .then(follow)
      .then(
        function (leaving) {
          if (leaving) return;
          busy = false;
          setDisabled(signInButton, false);
          startConditional();
        },
        function (err) {
          busy = false;
          setDisabled(signInButton, false);
          report(err, 'authenticate');
          startConditional();
        },
      );
  }

  function createPasskey() {
    if (busy) return;
    busy = true;
    stopConditional();
    setDisabled(createButton, true);
    clearError();
    postOptions(register.options, {})
      .then(function (optionsJSON) {
        return lib.startRegistration({ optionsJSON: optionsJSON });
      })
      .then(function (response) {
        var body = { response: response };
        if (nameInput) body.name = String(nameInput.value || '').trim();
        return postJSON(register.verify, body);
      })
      .then(follow)
      .then(
        function (leaving) {
          if (leaving) return;
          busy = false;
          setDisabled(createButton, false);
        },
        function (err) {
          busy = false;
          setDisabled(createButton, false);
          report(err, 'register');
        },
      );
  }

  // ---- Wiring --------------------------------------------------------------------------------

  function reveal(selector) {
    var nodes = document.querySelectorAll(selector);
    for (var i = 0; i < nodes.length; i += 1) nodes[i].hidden = false;
  }

  var wantsSignIn = Boolean(signIn.options && signIn.verify);
  var wantsRegister = Boolean(register.options && register.verify);
  if (!wantsSignIn && !wantsRegister) return;

  if (!supported) {
    reveal('[data-lk-passkey-unsupported]');
    return;
  }

  if (wantsSignIn && signInButton) {
    signInButton.addEventListener('click', function (event) {
      event.preventDefault();
      signInWithButton();
    });
    signInButton.hidden = false;
    reveal('[data-lk-passkey-ui="signin"]');
  }

  if (wantsRegister && createButton) {
    createButton.addEventListener('click', function (event) {
      event.preventDefault();
      createPasskey();
    });
    createButton.hidden = false;
    reveal('[data-lk-passkey-ui="register"]');
  }

  // Coming back through the back/forward cache after leaving the page: buttons usable again, and
  // the autofill request (cancelled on the way out) armed again.
  window.addEventListener('pageshow', function (event) {
    if (!event.persisted) return;
    busy = false;
    setDisabled(signInButton, false);
    setDisabled(createButton, false);
    startConditional();
  });

  if (wantsSignIn && attr('data-lk-conditional') === 'true' && typeof lib.browserSupportsWebAuthnAutofill === 'function') {
    // Another way in (the email form, Cancel, ...) drops the pending autofill request first.
    document.addEventListener(
      'submit',
      function () {
        stopConditional();
      },
      true,
    );
    Promise.resolve()
      .then(function () {
        return lib.browserSupportsWebAuthnAutofill();
      })
      .then(
        function (available) {
          if (!available) return;
          conditional.enabled = true;
          startConditional();
        },
        function () {
          /* no autofill: the button still works */
        },
      );
  }
})();
