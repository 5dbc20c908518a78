/* Sharing Portal — pages that follow a background job (a package being assembled, a preview
 * being rendered) reload themselves every data-seconds seconds. A script, not
 * <meta http-equiv="refresh">, which WCAG 2.2.1 (axe: meta-refresh) forbids. */
(function () {
  'use strict';
  var seconds = Number(document.currentScript && document.currentScript.dataset.seconds);
  if (seconds > 0) {
    window.setTimeout(function () { window.location.reload(); }, seconds * 1000);
  }
})();
