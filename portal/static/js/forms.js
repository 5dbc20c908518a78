/* Sharing Portal — forms (issue 22). Progressive enhancement only.
 *
 * 1. A page answering a submission with errors moves focus to its error summary, so a
 *    screen reader reads every error at once and a keyboard user starts there.
 * 2. A link of the summary ("#field-id") moves focus to that field (the first control of a
 *    group of checkboxes) and scrolls its label or legend into view, not just the control.
 */
(function () {
  'use strict';

  function controlOf(target) {
    if (target.matches('input, select, textarea, button')) {
      return target;
    }
    return target.querySelector('input, select, textarea, button');
  }

  function labelOf(control, target) {
    var group = target.closest('fieldset');
    if (group && group.querySelector('legend')) {
      return group.querySelector('legend');
    }
    if (control.id) {
      var label = document.querySelector('label[for="' + control.id + '"]');
      if (label) {
        return label;
      }
    }
    return control;
  }

  function init() {
    var summary = document.querySelector('.error-summary');
    if (!summary) {
      return;
    }
    summary.focus();
    summary.addEventListener('click', function (event) {
      var link = event.target.closest('a[href^="#"]');
      if (!link) {
        return;
      }
      var target = document.getElementById(decodeURIComponent(link.getAttribute('href').slice(1)));
      var control = target && controlOf(target);
      if (!control) {
        return;
      }
      event.preventDefault();
      labelOf(control, target).scrollIntoView();
      control.focus({ preventScroll: true });
    });
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
