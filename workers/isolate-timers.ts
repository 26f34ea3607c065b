// Part of the in-isolate harness (see isolate-harness.ts): setTimeout, setInterval, their clear
// functions and queueMicrotask, implemented inside the isolate with no host callback at all. This
// source runs in every isolate's harness closure, never on the host, after the console fragment; it
// uses the prelude's intrinsics (apply, defineProperty, floor, promiseThen, promiseResolve,
// NULL_PROTO) and the core's settleError.
//
// Timers run in virtual time: nothing waits. When the snippet's result is still pending once its
// microtasks have run, the host asks the harness for a `tick`, which advances a virtual clock to the
// earliest due timer and runs that one callback; its microtasks run before the next tick. So
// `await new Promise((r) => setTimeout(r, 1000))` resumes at once, timers fire in due order
// (ties in creation order), and an interval that is never cleared runs until the wall-clock or
// CPU limit ends the job. Date.now() keeps real time. Timers still pending when the result is ready
// never run. A callback that throws ends the job with that error (phase 'runtime'), as an uncaught
// exception would. The functions return numeric ids, as in browsers.

/** Closure source (plain JavaScript, no template substitutions). */
export const TIMERS_SOURCE = String.raw`
// ---- timers, in virtual time ---------------------------------------------------------------------
const MAX_DELAY_MS = 2147483647;
function Slots() {}
Slots.prototype = NULL_PROTO;
function Timer(id, at, seq, fn, args, every) {
  this.id = id;
  this.at = at;
  this.seq = seq;
  this.fn = fn;
  this.args = args;
  this.every = every;
}
Timer.prototype = NULL_PROTO;
const timerHeap = new Slots(); // binary min-heap on (at, seq)
let timerHeapSize = 0;
const liveTimers = new Slots(); // id -> Timer while it may still fire
let liveTimerCount = 0;
let nextTimerId = 1;
let timerSeq = 0;
let virtualNow = 0;

function firesBefore(x, y) {
  return x.at < y.at || (x.at === y.at && x.seq < y.seq);
}
function heapPush(t) {
  let i = timerHeapSize++;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    const p = timerHeap[parent];
    if (!firesBefore(t, p)) break;
    timerHeap[i] = p;
    i = parent;
  }
  timerHeap[i] = t;
}
function heapPop() {
  const top = timerHeap[0];
  const last = timerHeap[--timerHeapSize];
  timerHeap[timerHeapSize] = undefined;
  if (timerHeapSize > 0) {
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      let mv = last;
      if (l < timerHeapSize && firesBefore(timerHeap[l], mv)) { m = l; mv = timerHeap[l]; }
      if (r < timerHeapSize && firesBefore(timerHeap[r], mv)) { m = r; mv = timerHeap[r]; }
      if (m === i) break;
      timerHeap[i] = mv;
      i = m;
    }
    timerHeap[i] = last;
  }
  return top;
}
// Node's rule: a delay below 1, above 2^31-1 or not a number is 1 ms.
function delayOf(ms) {
  const d = floor(+ms);
  return d >= 1 && d <= MAX_DELAY_MS ? d : 1;
}
function schedule(fn, ms, args, repeat) {
  if (typeof fn !== 'function') throw new TypeError('the callback must be a function (code strings are not evaluated)');
  const delay = delayOf(ms);
  const t = new Timer(nextTimerId++, virtualNow + delay, timerSeq++, fn, args, repeat ? delay : 0);
  liveTimers[t.id] = t;
  liveTimerCount++;
  heapPush(t);
  return t.id;
}
function cancelTimer(id) {
  if (typeof id !== 'number') return;
  if (liveTimers[id] !== undefined) {
    liveTimers[id] = undefined;
    liveTimerCount--;
  }
}
// Runs the earliest live timer; false when none is left.
function runOneTimer() {
  while (timerHeapSize > 0) {
    const t = heapPop();
    if (liveTimers[t.id] !== t) continue; // cleared
    virtualNow = t.at;
    if (t.every > 0) {
      t.at = virtualNow + t.every;
      t.seq = timerSeq++;
      heapPush(t);
    } else {
      liveTimers[t.id] = undefined;
      liveTimerCount--;
    }
    try {
      apply(t.fn, undefined, t.args);
    } catch (e) {
      settleError(e, 'runtime');
    }
    return true;
  }
  return false;
}
const timerGlobals = {
  setTimeout(fn, ms, ...args) { return schedule(fn, ms, args, false); },
  setInterval(fn, ms, ...args) { return schedule(fn, ms, args, true); },
  clearTimeout(id) { cancelTimer(id); },
  clearInterval(id) { cancelTimer(id); },
  queueMicrotask(fn) {
    if (typeof fn !== 'function') throw new TypeError('the callback must be a function');
    promiseThen(promiseResolve(undefined), () => {
      try {
        apply(fn, undefined, []);
      } catch (e) {
        settleError(e, 'runtime');
      }
    });
  },
};
const TIMER_NAMES = ['setTimeout', 'setInterval', 'clearTimeout', 'clearInterval', 'queueMicrotask'];
for (let i = 0; i < TIMER_NAMES.length; i++) {
  const name = TIMER_NAMES[i];
  defineProperty(G, name, { __proto__: null, value: timerGlobals[name], writable: true, enumerable: false, configurable: true });
}
`;
