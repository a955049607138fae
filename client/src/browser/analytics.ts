import { isFields, resolveAliasArguments, resolvePageArguments, resolveTrackArguments, resolveUserArguments, splitOptions, type CallCallback, type Fields } from '../core/args.js';
import { mergeTagConfig, resolveTagConfig, type CategoryPreferences, type ResolvedTagConfig, type TagConfig } from '../core/config.js';
import { buildEvent, type CallType, type SegmentEvent } from '../core/event.js';
import { campaignFromSearch, pageContext, type CapturedPage, type PageContext } from '../core/page.js';
import type { QueueEntry } from '../core/queue.js';
import { createConsent, type Consent } from './consent.js';
import { capturePage, deviceContext, LIBRARY } from './context.js';
import { cookieJar } from './cookies.js';
import { createIdentity, type Identity } from './identity.js';
import { createQueue, type Queue } from './queue.js';
import { createStore } from './storage.js';
import { createSyncInjector, type SyncInjector } from './sync/index.js';

/** Elements given to `trackLink`/`trackForm`: one, a list (NodeList, array, jQuery object), or none. */
export type Targets = Element | ArrayLike<Element> | null | undefined;
/** An event name or properties for `trackLink`/`trackForm`: a value, or a function of the element. */
export type PerElement<T> = T | ((element: Element) => T);

/** A listener of `analytics.on(…)`. */
export type Listener = (...args: unknown[]) => void;

/** The visitor as analytics.js's `analytics.user()` shows it. */
export interface UserInfo {
  id(): string | null;
  anonymousId(): string | null;
  traits(): Fields;
}

/**
 * `window.analytics`: analytics.js's API. Every event call takes analytics.js's arguments (optional
 * ones may be left out; options `timestamp`, `messageId`, `anonymousId`, `integrations` set event
 * fields, `context` and any other option merge into the event's context) and returns a promise of
 * the event, resolved once it is stored in the queue (the callback, if any, is then called with
 * it). Calls made before the tag is loaded wait for `load`.
 */
export interface Analytics {
  page(...args: unknown[]): Promise<SegmentEvent>;
  track(...args: unknown[]): Promise<SegmentEvent>;
  identify(...args: unknown[]): Promise<SegmentEvent>;
  /** Without arguments: the current group (`id()`, `traits()`). */
  group(...args: unknown[]): Promise<SegmentEvent> | { id(): string | null; traits(): Fields };
  alias(...args: unknown[]): Promise<SegmentEvent>;
  screen(...args: unknown[]): Promise<SegmentEvent>;
  /** Forgets the user id, traits and group, and starts a new anonymous id. */
  reset(): void;
  /** Calls `callback` (and resolves) once the identity is settled and the syncs ran once. */
  ready(callback?: () => void): Promise<void>;
  user(): UserInfo;
  /** Sets the anonymous id (when given); resolves to the anonymous id in use. */
  setAnonymousId(id?: string | number | null): Promise<string>;
  /** Tracks clicks on links; a click that would leave the page navigates once the event is stored (300 ms at most). */
  trackLink(links: Targets, event: PerElement<string>, properties?: PerElement<Fields>): Analytics;
  /** Tracks form submissions; the form is submitted once the event is stored (300 ms at most). */
  trackForm(forms: Targets, event: PerElement<string>, properties?: PerElement<Fields>): Analytics;
  /** Merges consent preferences (category → boolean) into those the site stated before (cookie `sy_consent`). */
  setConsent(preferences: CategoryPreferences): Promise<void>;
  /** Starts the tag with a write key and options (a {@link TagConfig} part); does nothing once started. */
  load(writeKey: string, options?: Partial<TagConfig>): void;
  /** Like `load` (analytics.js has both). */
  initialize(writeKey: string, options?: Partial<TagConfig>): void;
  /** analytics.js's emitter: after each event call, `track` listeners get `(event, properties, options)`, `page`/`screen` `(category, name, properties, options)`, `identify`/`group` `(id, traits, options)`, `alias` `(userId, previousId, options)`. */
  on(event: CallType, listener: Listener): Analytics;
  /** Like `on`, for the next such call only. */
  once(event: CallType, listener: Listener): Analytics;
  /** Removes `listener` (every listener of `event` without one). */
  off(event: CallType, listener?: Listener): Analytics;
  /** analytics.js: a `page` call with `url` as its property. */
  pageview(url: string): Promise<SegmentEvent>;
  /** analytics.js's older name of `trackLink`. */
  trackClick(links: Targets, event: PerElement<string>, properties?: PerElement<Fields>): Analytics;
  /** analytics.js's older name of `trackForm`. */
  trackSubmit(forms: Targets, event: PerElement<string>, properties?: PerElement<Fields>): Analytics;
  /** Kept so that analytics.js code keeps running: does nothing. */
  debug(on?: boolean): Analytics;
  /** Segment's plugin and middleware methods: not supported; they warn on the console and do nothing, so a page calling them keeps working. */
  addSourceMiddleware(...args: unknown[]): Analytics;
  addDestinationMiddleware(...args: unknown[]): Analytics;
  addIntegrationMiddleware(...args: unknown[]): Analytics;
  register(...args: unknown[]): Analytics;
  deregister(...args: unknown[]): Analytics;
  /** True once the real object replaced the snippet's stub. */
  initialized: boolean;
  /** The tag's version. */
  VERSION: string;
  /** Test and support hook: the queued entries (every tab's). */
  _queue(): QueueEntry[];
  /** Test and support hook: sends what is due now (when this tab owns the queue). */
  _flush(): Promise<void>;
  /** Internal: the page context a snippet captured for the call being replayed. */
  _captured?: CapturedPage | undefined;
  [method: string]: unknown;
}

interface Core {
  config: ResolvedTagConfig;
  identity: Identity;
  consent: Consent;
  injector: SyncInjector;
  queue: Queue;
  device: Record<string, unknown>;
  lastConsent: string | undefined;
}

/**
 * The Sync Injector with its failures contained: a sync that throws is reported (console.warn) and
 * attaches nothing, rather than losing the event being made.
 */
function guarded(injector: SyncInjector): SyncInjector {
  const attempt = <T>(run: () => T, fallback: T): T => {
    try {
      return run();
    } catch (error) {
      console.warn('switchyard: sync failed', error);
      return fallback;
    }
  };
  return {
    run: (allowed) => attempt(() => injector.run(allowed), Promise.resolve()),
    providers: (allowed) => attempt(() => injector.providers(allowed), {}),
    forget: (allowed) => attempt(() => injector.forget(allowed), undefined),
  };
}

/** How long trackLink and trackForm wait for the event before going on, in ms (analytics.js: 300). */
const NAVIGATION_WAIT_MS = 300;

/**
 * Creates the `window.analytics` object; it starts (storage, consent, Sync Injector, queue) on `load`.
 * @param served the configuration the ingestion served with the tag, if any (`load` options are laid over it).
 * @param apiHost default `apiHost`: the origin the tag was loaded from.
 */
export function createAnalytics(served: TagConfig | undefined, apiHost: string): Analytics {
  let core: Core | undefined;
  // Calls made before load: [is setConsent, run].
  let pending: Array<[boolean, () => void]> = [];
  let markReady!: () => void;
  const readiness = new Promise<void>((resolve) => (markReady = resolve));

  // analytics.js's emitter: `on('track', (event, properties, options) => …)` and the like.
  const listeners: Array<[string, Listener, boolean]> = [];
  const fire = (type: CallType, e: SegmentEvent) => {
    const args: Record<CallType, unknown[]> = {
      track: [e.event, e.properties],
      page: [e.category, e.name, e.properties],
      screen: [e.category, e.name, e.properties],
      identify: [e.userId, e.traits],
      group: [e.groupId, e.traits],
      alias: [e.userId, e.previousId],
    };
    for (const entry of [...listeners]) {
      if (entry[0] !== type) continue;
      if (entry[2]) listeners.splice(listeners.indexOf(entry), 1);
      try {
        entry[1](...args[type], {});
      } catch (error) {
        console.warn('switchyard: listener failed', error);
      }
    }
  };
  const unsupported = (method: string) => () => {
    console.warn(`switchyard: analytics.${method} is not supported`);
    return analytics;
  };

  const later = <T>(consent: boolean, run: (c: Core) => T): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const go = () => {
        try {
          resolve(run(core!));
        } catch (error) {
          reject(error);
        }
      };
      if (core) go();
      else pending.push([consent, go]);
    });

  /** The consent now; a change (from any source) deletes the ids of syncs no longer allowed and runs the newly allowed ones. */
  const currentConsent = (c: Core) => {
    const preferences = c.consent.preferences();
    const key = JSON.stringify(preferences);
    if (c.lastConsent !== undefined && key !== c.lastConsent) {
      c.lastConsent = key;
      const allowed = c.consent.allows(preferences);
      c.injector.forget(allowed);
      void c.injector.run(allowed);
    }
    return preferences;
  };

  const emit = (type: CallType, fields: (c: Core, page: PageContext) => Fields, options: Fields, callback: CallCallback | undefined): Promise<SegmentEvent> => {
    const captured = analytics._captured;
    const page = pageContext(captured ?? capturePage());
    const calledAt = captured?.d ? new Date(captured.d) : undefined;
    const now = calledAt && !Number.isNaN(calledAt.getTime()) ? calledAt : new Date();
    return later(false, (c) => {
      const own = fields(c, page);
      const { fields: overrides, context } = splitOptions(options);
      const preferences = currentConsent(c);
      const userId = c.identity.userId();
      const event = buildEvent(
        type,
        {
          anonymousId: c.identity.anonymousId(),
          ...(userId ? { userId } : {}),
          ...own,
          ...overrides,
          context: {
            ...c.device,
            page,
            campaign: campaignFromSearch(page.search),
            consent: { categoryPreferences: preferences },
            providers: c.injector.providers(c.consent.allows(preferences)),
            ...context,
          },
        },
        { now, library: LIBRARY, messageIdPrefix: 'sy-' },
      );
      c.queue.add(event);
      callback?.(event);
      fire(type, event);
      return event;
    });
  };

  /** Runs `go` once `stored` settled, or after {@link NAVIGATION_WAIT_MS}, whichever comes first. */
  const after = (stored: Promise<unknown>, go: () => void) => {
    let done = false;
    const once = () => {
      if (done) return;
      done = true;
      go();
    };
    stored.then(once, once);
    setTimeout(once, NAVIGATION_WAIT_MS);
  };
  const each = (targets: Targets, type: string, listener: (element: Element, event: Event) => void) => {
    for (const element of !targets ? [] : targets instanceof Element ? [targets] : Array.from(targets)) {
      element.addEventListener(type, (event) => listener(element, event));
    }
    return analytics;
  };
  const track = (element: Element, event: PerElement<string>, properties: PerElement<Fields> | undefined) =>
    analytics.track(typeof event === 'function' ? event(element) : event, typeof properties === 'function' ? properties(element) : properties);

  const start = (config: ResolvedTagConfig) => {
    const cookies = cookieJar({ domain: config.cookie.domain, sameSite: config.cookie.sameSite });
    const store = createStore();
    let queue: Queue | undefined;
    const identity = createIdentity(config, cookies, store, (from, to) => queue?.adopt(from, to));
    if (config.serverCookie) void identity.syncServer();
    queue = createQueue(config, store, identity.ready);
    const consent = createConsent(config, cookies);
    const injector = guarded(
      createSyncInjector(config, {
        cookies,
        now: Date.now,
        identity: () => ({ anonymousId: identity.anonymousId(), userId: identity.userId() }),
        url: () => new URL(location.href),
        ready: () => identity.ready(),
      }),
    );
    const c: Core = (core = { config, identity, consent, injector, queue, device: deviceContext(), lastConsent: undefined });
    const calls = pending;
    pending = [];
    // Consent stated before load applies before the first sync run.
    for (const [isConsent, go] of calls) if (isConsent) go();
    const preferences = consent.preferences();
    c.lastConsent = JSON.stringify(preferences);
    void Promise.all([identity.ready(), injector.run(consent.allows(preferences))]).then(markReady, markReady);
    for (const [isConsent, go] of calls) if (!isConsent) go();
  };

  const analytics: Analytics = {
    page(...args) {
      const { category, name, properties, options, callback } = resolvePageArguments(args);
      const named = { ...(category !== undefined && { category }), ...(name !== undefined && { name }) };
      return emit('page', (_c, page) => ({ ...named, properties: { ...page, ...named, ...properties } }), options, callback);
    },
    screen(...args) {
      const { category, name, properties, options, callback } = resolvePageArguments(args);
      return emit('screen', () => ({ ...(category !== undefined && { category }), ...(name !== undefined && { name }), properties }), options, callback);
    },
    track(...args) {
      const { event, properties, options, callback } = resolveTrackArguments(args);
      return emit('track', () => ({ event, properties }), options, callback);
    },
    identify(...args) {
      const { id, traits, options, callback } = resolveUserArguments(args);
      return emit(
        'identify',
        ({ identity }) => {
          const current = identity.userId();
          const same = id === undefined || current === null || current === id;
          // Another user on this browser: a new anonymous id too (analytics.js).
          if (!same) identity.setAnonymousId(null);
          if (id !== undefined) identity.setUserId(id);
          const merged = { ...(same ? identity.traits() : {}), ...traits };
          identity.setTraits(merged);
          return { traits: merged };
        },
        options,
        callback,
      );
    },
    group(...args) {
      if (!args.length) return { id: () => core?.identity.groupId() ?? null, traits: () => core?.identity.groupTraits() ?? {} };
      const { id, traits, options, callback } = resolveUserArguments(args);
      return emit(
        'group',
        ({ identity }) => {
          const current = identity.groupId();
          const same = id === undefined || current === null || current === id;
          if (id !== undefined) identity.setGroupId(id);
          const merged = { ...(same ? identity.groupTraits() : {}), ...traits };
          identity.setGroupTraits(merged);
          return { groupId: identity.groupId() ?? undefined, traits: merged };
        },
        options,
        callback,
      );
    },
    alias(...args) {
      const { userId, previousId, options, callback } = resolveAliasArguments(args);
      return emit('alias', ({ identity }) => ({ userId, previousId: previousId ?? identity.userId() ?? identity.anonymousId() }), options, callback);
    },
    reset() {
      void later(false, ({ identity }) => {
        identity.setUserId(null);
        identity.setTraits({});
        identity.setGroupId(null);
        identity.setGroupTraits({});
        identity.setAnonymousId(null);
      });
    },
    ready(callback) {
      return readiness.then(() => callback?.());
    },
    user: () => ({
      id: () => core?.identity.userId() ?? null,
      anonymousId: () => core?.identity.anonymousId() ?? null,
      traits: () => core?.identity.traits() ?? {},
    }),
    setAnonymousId(id) {
      return later(false, ({ identity }) => {
        if (id != null && id !== '') identity.setAnonymousId(String(id));
        return identity.anonymousId();
      });
    },
    trackLink(links, event, properties) {
      return each(links, 'click', (element, click) => {
        const stored = track(element, event, properties);
        const link = (element as HTMLAnchorElement).href as string | SVGAnimatedString | undefined;
        const href = typeof link === 'string' ? link : link?.baseVal;
        const { metaKey, ctrlKey, shiftKey, altKey, button } = click as MouseEvent;
        // New tabs and windows (target, modifier keys, other buttons) leave this page alone: nothing to wait for.
        if (!href || click.defaultPrevented || element.getAttribute('target') === '_blank' || metaKey || ctrlKey || shiftKey || altKey || button > 0) return;
        click.preventDefault();
        after(stored, () => location.assign(href));
      });
    },
    trackForm(forms, event, properties) {
      return each(forms, 'submit', (form, submit) => {
        if (submit.defaultPrevented) return void track(form, event, properties);
        submit.preventDefault();
        // The prototype's submit: a control named "submit" shadows the form's own method.
        after(track(form, event, properties), () => HTMLFormElement.prototype.submit.call(form as HTMLFormElement));
      });
    },
    setConsent(preferences) {
      return later(true, (c) => {
        if (isFields(preferences)) c.consent.state(preferences);
        currentConsent(c);
      });
    },
    load(writeKey, options) {
      if (core) return;
      const config = resolveTagConfig(mergeTagConfig(served ?? { writeKey }, options));
      start({ ...config, apiHost: config.apiHost ?? apiHost.replace(/\/+$/, '') });
    },
    initialize: (writeKey, options) => analytics.load(writeKey, options),
    on(event, listener) {
      listeners.push([event, listener, false]);
      return analytics;
    },
    once(event, listener) {
      listeners.push([event, listener, true]);
      return analytics;
    },
    off(event, listener) {
      for (let i = listeners.length - 1; i >= 0; i--) if (listeners[i]![0] === event && (!listener || listeners[i]![1] === listener)) listeners.splice(i, 1);
      return analytics;
    },
    pageview: (url) => analytics.page({ url }),
    trackClick: (links, event, properties) => analytics.trackLink(links, event, properties),
    trackSubmit: (forms, event, properties) => analytics.trackForm(forms, event, properties),
    debug: () => analytics,
    addSourceMiddleware: unsupported('addSourceMiddleware'),
    addDestinationMiddleware: unsupported('addDestinationMiddleware'),
    addIntegrationMiddleware: unsupported('addIntegrationMiddleware'),
    register: unsupported('register'),
    deregister: unsupported('deregister'),
    initialized: true,
    VERSION: LIBRARY.version,
    _queue: () => core?.queue.entries() ?? [],
    _flush: () => core?.queue.flush() ?? Promise.resolve(),
  };
  return analytics;
}
