/* Sharing Portal — the redaction review page (issue 16, "Marking").
 *
 * Progressive enhancement only: without this script the page links, the hit list and the
 * box form (typed fractions) still work. With it:
 *   1. drawing: drag on a .page-canvas[data-drawable] to draw a box; it fills the box form;
 *      typing in the form shows the box on the page; Escape cancels a drag;
 *   2. keys: j / k next / previous hit, n / p next / previous page;
 *   3. pages still being rendered (img[data-pending]) are retried until they appear.
 *
 * The portal's CSP forbids inline scripts and style attributes, so overlays are drawn with
 * SVG geometry attributes only (the overlay's viewBox is 0..1000 in both directions).
 */
(function () {
  'use strict';

  var SVG_NS = 'http://www.w3.org/2000/svg';
  var VIEWBOX = 1000;
  var MIN_FRACTION = 0.005; /* a box must be at least 0.5% of the page in each dimension */
  var RETRY_DELAY_MS = 2000;
  var MAX_RETRIES = 60;
  var PROBE_TIMEOUT_MS = 20000; /* a probe with no answer by then is abandoned and retried */
  var CHECK_NEAR_MS = 3000; /* how often pending pages are measured (besides the observer) */
  var COORDS = ['x0', 'y0', 'x1', 'y1'];

  var root = document.querySelector('[data-review]');
  if (!root) {
    return;
  }

  /* ---------------------------------------------------------------- helpers */

  function clamp01(value) {
    return value < 0 ? 0 : value > 1 ? 1 : value;
  }

  /* Rounded to 4 decimals, outwards (a redaction box never shrinks by rounding). */
  function floor4(value) {
    return clamp01(Math.floor(value * 10000 + 1e-7) / 10000);
  }

  function ceil4(value) {
    return clamp01(Math.ceil(value * 10000 - 1e-7) / 10000);
  }

  function pageOf(element) {
    var page = parseInt(element.getAttribute('data-page'), 10);
    return isNaN(page) ? null : page;
  }

  function canvasForPage(page) {
    var canvases = root.querySelectorAll('.page-canvas[data-page]');
    for (var i = 0; i < canvases.length; i += 1) {
      if (pageOf(canvases[i]) === page) {
        return canvases[i];
      }
    }
    return null;
  }

  /* ------------------------------------------------------------ live region */

  var liveRegion = root.querySelector('.visually-hidden[aria-live="polite"]');
  if (!liveRegion) {
    liveRegion = document.createElement('p');
    liveRegion.className = 'visually-hidden';
    liveRegion.setAttribute('aria-live', 'polite');
    root.appendChild(liveRegion);
  }
  var announceTimer = 0;

  function announce(message) {
    /* Emptied first so the same message twice in a row is read twice. */
    liveRegion.textContent = '';
    window.clearTimeout(announceTimer);
    announceTimer = window.setTimeout(function () {
      liveRegion.textContent = message;
    }, 50);
  }

  /* Hatching for proposed (pending) marks: review.css fills them with url(#review-hatch)
     and falls back to a flat tint when this is missing (no script). */
  if (!document.getElementById('review-hatch')) {
    var hatchSvg = document.createElementNS(SVG_NS, 'svg');
    hatchSvg.setAttribute('class', 'review-defs');
    hatchSvg.setAttribute('aria-hidden', 'true');
    hatchSvg.setAttribute('focusable', 'false');
    hatchSvg.setAttribute('width', '0');
    hatchSvg.setAttribute('height', '0');
    var pattern = document.createElementNS(SVG_NS, 'pattern');
    pattern.setAttribute('id', 'review-hatch');
    pattern.setAttribute('patternUnits', 'userSpaceOnUse');
    pattern.setAttribute('width', '14');
    pattern.setAttribute('height', '14');
    pattern.setAttribute('patternTransform', 'rotate(45)');
    var stripe = document.createElementNS(SVG_NS, 'rect');
    stripe.setAttribute('class', 'review-hatch__stripe');
    stripe.setAttribute('width', '5');
    stripe.setAttribute('height', '14');
    pattern.appendChild(stripe);
    var defs = document.createElementNS(SVG_NS, 'defs');
    defs.appendChild(pattern);
    hatchSvg.appendChild(defs);
    root.appendChild(hatchSvg);
  }

  /* ------------------------------------------------------------ the box form */

  var form = document.getElementById('box-form');
  var pageInput = document.getElementById('box-page');
  var reasonInput = document.getElementById('box-reason');
  var coordInputs = COORDS.map(function (name) {
    return document.getElementById('box-' + name);
  });
  var hasForm = Boolean(form && pageInput && coordInputs.every(Boolean));

  /* One draft rectangle at a time, in the svg of the page it belongs to. */
  var draft = null;

  function removeDraft() {
    if (draft && draft.parentNode) {
      draft.parentNode.removeChild(draft);
    }
    draft = null;
  }

  /* box: {x0, y0, x1, y1} as fractions, already ordered. */
  function showDraft(canvas, box) {
    var svg = canvas && canvas.querySelector('svg.page-overlay');
    if (!svg) {
      removeDraft();
      return;
    }
    if (!draft) {
      draft = document.createElementNS(SVG_NS, 'rect');
      draft.setAttribute('class', 'overlay-draft');
    }
    if (draft.parentNode !== svg) {
      svg.appendChild(draft); /* last child: drawn above marks and hits */
    }
    draft.setAttribute('x', (box.x0 * VIEWBOX).toFixed(1));
    draft.setAttribute('y', (box.y0 * VIEWBOX).toFixed(1));
    draft.setAttribute('width', ((box.x1 - box.x0) * VIEWBOX).toFixed(1));
    draft.setAttribute('height', ((box.y1 - box.y0) * VIEWBOX).toFixed(1));
  }

  function ordered(ax, ay, bx, by) {
    return {
      x0: Math.min(ax, bx),
      y0: Math.min(ay, by),
      x1: Math.max(ax, bx),
      y1: Math.max(ay, by),
    };
  }

  /* The box typed in the form, or null when it is incomplete or out of range. */
  function boxFromInputs() {
    if (!hasForm) {
      return null;
    }
    var page = parseInt(pageInput.value, 10);
    var values = coordInputs.map(function (input) {
      return input.value.trim() === '' ? NaN : Number(input.value);
    });
    var valid = values.every(function (v) {
      return isFinite(v) && v >= 0 && v <= 1;
    });
    if (isNaN(page) || !valid) {
      return null;
    }
    var box = ordered(values[0], values[1], values[2], values[3]);
    if (box.x1 <= box.x0 || box.y1 <= box.y0) {
      return null;
    }
    return { page: page, box: box };
  }

  function syncDraftFromInputs() {
    var typed = boxFromInputs();
    var canvas = typed && canvasForPage(typed.page);
    if (canvas) {
      showDraft(canvas, typed.box);
    } else {
      removeDraft();
    }
  }

  function fillInputs(page, box) {
    pageInput.value = String(page);
    coordInputs[0].value = String(floor4(box.x0));
    coordInputs[1].value = String(floor4(box.y0));
    coordInputs[2].value = String(ceil4(box.x1));
    coordInputs[3].value = String(ceil4(box.y1));
  }

  if (hasForm) {
    form.addEventListener('input', function (event) {
      var id = event.target && event.target.id;
      if (id === 'box-page' || /^box-[xy][01]$/.test(id)) {
        syncDraftFromInputs();
      }
    });
    /* A form shown again with its values (e.g. after a validation error). */
    syncDraftFromInputs();
  }

  /* ----------------------------------------------------------------- drawing */

  var drag = null; /* {canvas, image, pointerId, startX, startY, endX, endY} */

  function pointOn(image, event) {
    var rect = image.getBoundingClientRect();
    if (rect.width <= 0 || rect.height <= 0) {
      return null;
    }
    return {
      x: clamp01((event.clientX - rect.left) / rect.width),
      y: clamp01((event.clientY - rect.top) / rect.height),
    };
  }

  function endDrag(canvas) {
    if (drag && canvas.hasPointerCapture && canvas.hasPointerCapture(drag.pointerId)) {
      canvas.releasePointerCapture(drag.pointerId);
    }
    if (drag) {
      canvas.classList.remove('page-canvas--drawing');
    }
    drag = null;
  }

  function cancelDrag(message) {
    if (!drag) {
      return;
    }
    endDrag(drag.canvas);
    syncDraftFromInputs(); /* back to what the form holds, if anything */
    if (message) {
      announce(message);
    }
  }

  function enableDrawing(canvas) {
    var image = canvas.querySelector('img.page-image');
    if (!image || !canvas.querySelector('svg.page-overlay')) {
      return;
    }
    image.setAttribute('draggable', 'false');
    canvas.addEventListener('dragstart', function (event) {
      event.preventDefault();
    });

    canvas.addEventListener('pointerdown', function (event) {
      if (drag || !event.isPrimary || event.button !== 0) {
        return;
      }
      if (image.hasAttribute('data-pending') || !image.complete || !image.naturalWidth) {
        announce('Page ' + pageOf(canvas) + ' is still being prepared. Draw on it once it appears.');
        return;
      }
      var point = pointOn(image, event);
      if (!point) {
        return;
      }
      event.preventDefault(); /* no text selection or image drag */
      drag = {
        canvas: canvas,
        image: image,
        pointerId: event.pointerId,
        startX: point.x,
        startY: point.y,
        endX: point.x,
        endY: point.y,
      };
      canvas.setPointerCapture(event.pointerId);
      canvas.classList.add('page-canvas--drawing');
    });

    canvas.addEventListener('pointermove', function (event) {
      if (!drag || drag.canvas !== canvas || event.pointerId !== drag.pointerId) {
        return;
      }
      var point = pointOn(image, event);
      if (!point) {
        return;
      }
      drag.endX = point.x;
      drag.endY = point.y;
      showDraft(canvas, ordered(drag.startX, drag.startY, drag.endX, drag.endY));
    });

    canvas.addEventListener('pointerup', function (event) {
      if (!drag || drag.canvas !== canvas || event.pointerId !== drag.pointerId) {
        return;
      }
      var point = pointOn(image, event);
      if (point) {
        drag.endX = point.x;
        drag.endY = point.y;
      }
      var box = ordered(drag.startX, drag.startY, drag.endX, drag.endY);
      endDrag(canvas);
      if (box.x1 - box.x0 < MIN_FRACTION || box.y1 - box.y0 < MIN_FRACTION) {
        syncDraftFromInputs(); /* a click or a slip: keep the box the form holds */
        return;
      }
      var page = pageOf(canvas);
      if (!hasForm || page === null) {
        showDraft(canvas, box);
        return;
      }
      fillInputs(page, box);
      syncDraftFromInputs(); /* the draft shows exactly the rounded values sent */
      announce('Box drawn on page ' + page + '. Choose a reason and propose it.');
      if (reasonInput) {
        reasonInput.focus();
      }
    });

    canvas.addEventListener('pointercancel', function (event) {
      if (drag && drag.canvas === canvas && event.pointerId === drag.pointerId) {
        cancelDrag('');
      }
    });

    canvas.addEventListener('lostpointercapture', function (event) {
      if (drag && drag.canvas === canvas && event.pointerId === drag.pointerId) {
        cancelDrag('');
      }
    });
  }

  Array.prototype.forEach.call(
    root.querySelectorAll('.page-canvas[data-drawable]'),
    enableDrawing
  );

  document.addEventListener('keydown', function (event) {
    if (drag && event.key === 'Escape') {
      event.preventDefault();
      event.stopPropagation();
      cancelDrag('Drawing cancelled.');
    }
  }, true);

  /* --------------------------------------------------------- keyboard moves */

  var sections = Array.prototype.slice.call(root.querySelectorAll('.review-page'));
  var hitLinks = Array.prototype.slice.call(root.querySelectorAll('a[data-hit]'));
  var navLinks = Array.prototype.slice.call(root.querySelectorAll('a[data-nav-page]'));
  var currentHit = -1;

  function fragmentTarget(link) {
    var hash = link.hash ? link.hash.slice(1) : '';
    if (hash) {
      var id;
      try {
        id = decodeURIComponent(hash);
      } catch (error) {
        id = hash;
      }
      var target = document.getElementById(id);
      if (target && sections.indexOf(target) !== -1) {
        return target;
      }
    }
    var page = pageOf(link);
    for (var i = 0; i < sections.length; i += 1) {
      if (pageOf(sections[i]) === page) {
        return sections[i];
      }
    }
    return null;
  }

  function markCurrent(links, current) {
    links.forEach(function (link) {
      if (link === current) {
        link.setAttribute('aria-current', 'true');
      } else if (link.getAttribute('aria-current') === 'true') {
        link.removeAttribute('aria-current');
      }
    });
  }

  function goToSection(section) {
    if (!section.hasAttribute('tabindex')) {
      section.setAttribute('tabindex', '-1');
    }
    section.scrollIntoView({ block: 'start' });
    section.focus({ preventScroll: true });
    var navLink = null;
    navLinks.forEach(function (link) {
      if (fragmentTarget(link) === section) {
        navLink = link;
      }
    });
    markCurrent(navLinks, navLink);
  }

  function inViewport(element) {
    var rect = element.getBoundingClientRect();
    return rect.bottom > 0 && rect.top < window.innerHeight;
  }

  /* The page being read: the focused one if it is on screen, else the one at the top. */
  function currentSectionIndex() {
    var active = document.activeElement;
    for (var i = 0; i < sections.length; i += 1) {
      if (sections[i].contains(active) && inViewport(sections[i])) {
        return i;
      }
    }
    var line = Math.min(window.innerHeight * 0.25, 120);
    var index = -1;
    for (var j = 0; j < sections.length; j += 1) {
      if (sections[j].getBoundingClientRect().top <= line) {
        index = j;
      }
    }
    return index;
  }

  function moveHit(step) {
    if (!hitLinks.length) {
      announce('There are no hits on this item.');
      return;
    }
    var next = currentHit === -1 ? (step > 0 ? 0 : hitLinks.length - 1) : currentHit + step;
    if (next < 0 || next >= hitLinks.length) {
      announce(step > 0 ? 'That was the last hit.' : 'That was the first hit.');
      return;
    }
    var target = fragmentTarget(hitLinks[next]);
    if (!target) {
      return;
    }
    currentHit = next;
    markCurrent(hitLinks, hitLinks[next]);
    goToSection(target);
    announce('Hit ' + (next + 1) + ' of ' + hitLinks.length + ': ' +
      hitLinks[next].textContent.trim());
  }

  function movePage(step) {
    if (!sections.length) {
      return;
    }
    var current = currentSectionIndex();
    var next = current + step;
    if (current === -1 && step < 0) {
      next = 0;
    }
    if (next < 0 || next >= sections.length) {
      announce(step > 0 ? 'This is the last page.' : 'This is the first page.');
      return;
    }
    goToSection(sections[next]);
  }

  function isTyping(element) {
    if (!element || element === document.body) {
      return false;
    }
    var tag = element.tagName;
    return tag === 'INPUT' || tag === 'SELECT' || tag === 'TEXTAREA' ||
      element.isContentEditable;
  }

  document.addEventListener('keydown', function (event) {
    if (event.defaultPrevented || event.isComposing || drag ||
        event.altKey || event.ctrlKey || event.metaKey || event.shiftKey ||
        isTyping(event.target) || isTyping(document.activeElement)) {
      return;
    }
    var key = (event.key || '').toLowerCase();
    var actions = { j: [moveHit, 1], k: [moveHit, -1], n: [movePage, 1], p: [movePage, -1] };
    var action = actions[key];
    if (!action) {
      return;
    }
    event.preventDefault();
    action[0](action[1]);
  });

  /* A hit link followed with the mouse or Enter: j / k carry on from it. */
  hitLinks.forEach(function (link, index) {
    link.addEventListener('click', function (event) {
      if (event.button !== 0 || event.altKey || event.ctrlKey || event.metaKey ||
          event.shiftKey) {
        return;
      }
      currentHit = index;
      markCurrent(hitLinks, link);
      var target = fragmentTarget(link);
      if (target) {
        /* The browser scrolls to the fragment; focus follows so screen readers do too. */
        window.setTimeout(function () {
          target.focus({ preventScroll: true });
        }, 0);
      }
    });
  });

  /* ------------------------------------------------ pages still being rendered */

  function contentType(response) {
    return (response.headers.get('Content-Type') || '').split(';')[0].trim().toLowerCase();
  }

  function retryDelay(response) {
    var seconds = response ? parseInt(response.headers.get('Retry-After'), 10) : NaN;
    return isNaN(seconds) ? RETRY_DELAY_MS : Math.min(Math.max(seconds, 1), 30) * 1000;
  }

  function watchPending(image) {
    var state = {
      tries: 0,
      timer: 0,
      visible: false,
      busy: false,
      done: false,
      method: 'HEAD', /* the probe needs only the headers; GET if HEAD is refused */
      base: new URL(image.getAttribute('src'), document.baseURI),
    };

    function stop() {
      state.done = true;
      window.clearTimeout(state.timer);
      if (observer) {
        observer.unobserve(image);
      }
    }

    function schedule(delay) {
      window.clearTimeout(state.timer);
      if (!state.done && state.visible && !state.busy) {
        state.timer = window.setTimeout(probe, delay);
      }
    }

    function probe() {
      if (state.done || !state.visible || state.busy) {
        return;
      }
      if (state.tries >= MAX_RETRIES) {
        stop();
        return;
      }
      state.tries += 1;
      state.busy = true;
      var url = new URL(state.base.href);
      url.searchParams.set('r', String(state.tries));
      var options = { method: state.method, credentials: 'same-origin', cache: 'no-store' };
      var abandon = 0;
      if (window.AbortController) {
        var controller = new AbortController();
        options.signal = controller.signal;
        abandon = window.setTimeout(function () { controller.abort(); }, PROBE_TIMEOUT_MS);
      }
      fetch(url.href, options)
        .then(function (response) {
          window.clearTimeout(abandon);
          if (response.ok && contentType(response) === 'image/png') {
            image.addEventListener('load', function onLoad() {
              image.removeEventListener('load', onLoad);
              image.removeAttribute('data-pending');
              stop();
            });
            image.addEventListener('error', function onError() {
              image.removeEventListener('error', onError);
              state.busy = false;
              schedule(RETRY_DELAY_MS);
            });
            image.src = url.href;
            return;
          }
          if (response.status === 405 && state.method === 'HEAD') {
            state.method = 'GET';
          } else if ([401, 403, 404, 410].indexOf(response.status) !== -1) {
            stop(); /* it will not come: leave the placeholder */
            return;
          }
          state.busy = false;
          schedule(retryDelay(response));
        })
        .catch(function () {
          window.clearTimeout(abandon);
          state.busy = false;
          schedule(RETRY_DELAY_MS);
        });
    }

    return {
      visible: function (isVisible) {
        var was = state.visible;
        state.visible = isVisible;
        if (isVisible && !was) {
          schedule(RETRY_DELAY_MS);
        } else if (!isVisible) {
          window.clearTimeout(state.timer); /* paused while far off screen */
        }
      },
      pending: function () {
        return !state.done;
      },
    };
  }

  /* Within a screen's height of the window: the observer's margin, measured directly. */
  function nearScreen(image) {
    var box = image.getBoundingClientRect();
    var height = window.innerHeight || document.documentElement.clientHeight;
    return box.bottom >= -height && box.top <= 2 * height;
  }

  var pendingImages = root.querySelectorAll('img.page-image[data-pending]');
  var watchers = new Map();
  var observer = null;
  if (pendingImages.length && 'IntersectionObserver' in window && window.fetch && window.URL) {
    observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        var watcher = watchers.get(entry.target);
        if (watcher) {
          watcher.visible(entry.isIntersecting);
        }
      });
    }, { rootMargin: '100% 0px' });
    Array.prototype.forEach.call(pendingImages, function (image) {
      watchers.set(image, watchPending(image));
      observer.observe(image);
    });
    /* The observer reports changes only; a page whose box changed while it was being laid
       out (lazy images grow from nothing) could be missed by it and wait for good. So the
       pending pages are also measured now and then; done ones are forgotten. */
    var nearCheck = window.setInterval(function () {
      watchers.forEach(function (watcher, image) {
        if (!watcher.pending()) {
          watchers.delete(image);
        } else {
          watcher.visible(nearScreen(image));
        }
      });
      if (!watchers.size) {
        window.clearInterval(nearCheck);
      }
    }, CHECK_NEAR_MS);
  }
}());
