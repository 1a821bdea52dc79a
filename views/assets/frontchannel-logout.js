/*
 * Latchkey — the front-channel logout page (views/frontchannel-logout.eta).
 *
 * Plain browser JavaScript, no build step, no globals. Loaded without defer in the page's <head>, before the
 * iframes are parsed, so that no iframe's load event is missed: load events do not bubble, and are caught
 * here on the document in the capture phase.
 *   iframe[data-lk-logout-frame]   the applications' logout pages
 *   #lk-logout-continue            the link to where the sign-out goes on (its href)
 *   #lk-logout-status              the status message (role="status")
 *   data-lk-logout-wait on <main>  how long to wait for the iframes, in milliseconds (default 3000)
 * Once every iframe has loaded, or when the wait is over, the page goes on (location.replace: the Back
 * button does not come back to it). Without JavaScript, the page's meta refresh and the link do the same.
 */
(function () {
  'use strict';
  var loaded = [];
  var gone = false;

  function frames() {
    return document.querySelectorAll('iframe[data-lk-logout-frame]');
  }

  function goOn() {
    if (gone) return;
    var link = document.getElementById('lk-logout-continue');
    if (!link) return;
    gone = true;
    var status = document.getElementById('lk-logout-status');
    if (status) status.textContent = 'Signed out. Continuing…';
    window.location.replace(link.href);
  }

  function check() {
    if (document.readyState === 'loading') return;
    var all = frames();
    for (var i = 0; i < all.length; i++) {
      if (loaded.indexOf(all[i]) < 0) return;
    }
    goOn();
  }

  document.addEventListener(
    'load',
    function (event) {
      var target = event.target;
      if (target && target.tagName === 'IFRAME' && target.hasAttribute('data-lk-logout-frame') && loaded.indexOf(target) < 0) {
        loaded.push(target);
        check();
      }
    },
    true,
  );

  document.addEventListener('DOMContentLoaded', function () {
    var main = document.getElementById('main');
    var wait = main ? parseInt(main.getAttribute('data-lk-logout-wait') || '', 10) : NaN;
    window.setTimeout(goOn, wait > 0 ? wait : 3000);
    check();
  });
})();
