// RedisStore's near-cache of revocation lookups, kept true through pub/sub: invalidations (their format is in
// invalidation.ts), the probe that proves the subscriber hears them, and the acknowledgements that let `revoke`
// resolve only once every listening instance (this one included) has dropped its cached entry. Whether the subscriber
// may be trusted with the cache at all (it hears the client's server, which counts it) is liveness.ts's to prove.
import { LRUCache } from 'lru-cache';
import type { Cluster, Redis } from 'ioredis';
import type { Call } from './command.js';
import { AnsweredInvalidations, type Invalidation, MAX_INVALIDATION_CHARS, readInvalidation } from './invalidation.js';
import type { KeyLayout } from './keys.js';
import type { RevocationEntry } from './records.js';
import { peersOn, roomForListeners } from './subscriber-peers.js';
import { type ClusterSubscriberWatcher, countClusterListeners, warnUnfollowed, watchClusterSubscriber } from './cluster-subscriber.js';
import { SubscriberLiveness } from './liveness.js';
import { awaitConfirmations, closedBeforeWrite, type PendingConfirm } from './confirmations.js';

/** What the near-cache keeps per token id or subject: the entry, or null for "none". */
interface Cached {
  entry: RevocationEntry | null;
}

/** What a NearCache talks to and how long it waits. */
export interface NearCacheOptions {
  client: Redis | Cluster;
  /** The subscriber connection; without one nothing is cached and revocations are published unconfirmed. */
  subscriber: Redis | Cluster | undefined;
  keys: KeyLayout;
  /** This instance's id (16 hex digits), named in its invalidations and in its acknowledgement channel. */
  instanceId: string;
  /** Sends the store's commands: revocation writes and what leads to them wait for the durability verdict. */
  call: Call;
  /** Sends what writes nothing durable (liveness probes, UNSUBSCRIBE): never held by the durability verdict. */
  pubsubCall: Call;
  /** Size, lifetime and liveness heartbeat of the cache, or false to use the subscriber only to confirm revocations. */
  cache: { max: number; ttl: number; heartbeat: number } | false;
  /** Longest a revocation waits for confirmations, in ms. */
  confirmTimeout: number;
}

/** Cached revocation lookups, their invalidation on every instance, and the confirmation of revocations. */
export class NearCache {
  private readonly client: Redis | Cluster;
  private readonly subscriber: Redis | Cluster | undefined;
  private readonly call: Call;
  private readonly pubsubCall: Call;
  private readonly id: string;
  private readonly channel: string;
  private readonly ackChannel: string;
  private readonly keys: KeyLayout;
  private readonly confirmMs: number;
  private readonly tokenCache: LRUCache<string, Cached> | undefined;
  private readonly subjectCache: LRUCache<string, Cached> | undefined;
  private cacheOn = false;
  /**
   * Bumped by every invalidation, (re)subscription, disconnect and local revocation: a lookup started before a bump
   * must not be cached.
   */
  private epoch = 0;
  /** Bumped whenever the subscription is lost or restarted: a SUBSCRIBE started before a bump must not turn the cache on. */
  private generation = 0;
  private seq = 0;
  private closed = false;
  /**
   * What close() calls at once: every revoke still waiting (for SUBSCRIBE or confirmations) ends then, not at its
   * timeout. A set each wait leaves when it ends, not one promise they all race: that would keep a reaction per revoke.
   */
  private readonly closeWaiters = new Set<() => void>();
  /** The close in progress or done: a second close() waits for the first. */
  private closing: Promise<void> | undefined;
  private readonly pending = new Map<number, PendingConfirm>();
  private readonly answered = new AnsweredInvalidations();
  /** Whether the subscriber hears the client's server and is counted there, and until when that holds. */
  private readonly liveness: SubscriberLiveness;
  /** The SUBSCRIBE in flight, if any: a revoke waits for it, or it could not hear its own invalidation. */
  private subscribing: Promise<void> | undefined;
  private readonly handlers: [string, (...args: never[]) => void][] = [];
  /** Follows a Cluster's own subscriber connection (see cluster-subscriber.ts). */
  private watcher: ClusterSubscriberWatcher | undefined;
  /** A Cluster subscriber whose connection cannot be followed: its switches are unseen, so nothing is cached. */
  private blind = false;
  /** Lookups answered locally and sent to Redis, messages received and messages that were not ours. */
  readonly counters = { hits: 0, misses: 0, invalidations: 0, foreign: 0 };

  constructor(o: NearCacheOptions) {
    this.client = o.client;
    this.subscriber = o.subscriber;
    this.call = o.call;
    this.pubsubCall = o.pubsubCall;
    this.id = o.instanceId;
    this.keys = o.keys;
    this.channel = o.keys.invalidationChannel;
    this.ackChannel = o.keys.ackChannel(o.instanceId);
    this.confirmMs = o.confirmTimeout;
    this.liveness = new SubscriberLiveness(
      {
        client: o.client,
        call: o.pubsubCall,
        instanceId: o.instanceId,
        channel: this.channel,
        ackChannel: this.ackChannel,
        confirmTimeout: o.confirmTimeout,
        // Without a cache nothing is trusted, so nothing is renewed: the value is never used then.
        heartbeat: o.cache === false ? o.confirmTimeout : o.cache.heartbeat,
      },
      { proven: () => this.proven(), lost: () => this.cacheOff() },
    );
    if (o.subscriber && o.cache !== false) {
      this.tokenCache = new LRUCache({ max: o.cache.max, ttl: o.cache.ttl });
      this.subjectCache = new LRUCache({ max: o.cache.max, ttl: o.cache.ttl });
    }
    if (o.subscriber) {
      this.peers = peersOn<NearCache>(o.subscriber, this.channel);
      this.peers.push(this);
      this.listen(o.subscriber);
    }
  }

  /** This near-cache and the others of this process on the same subscriber connection and channel. */
  private readonly peers: NearCache[] = [];

  /** Whether the cache is in use right now (off until proven live, whenever the subscriber is disconnected, and once a proof is overdue). */
  get enabled(): boolean {
    return this.cacheOn && performance.now() < this.liveness.until;
  }

  /**
   * The cached entries of a token id and (when given) its subject, or undefined when either is not cached and Redis
   * must be asked. Counts the hit or the miss.
   */
  lookup(tokenId: string, subject: string | undefined): { token: RevocationEntry | null; subject: RevocationEntry | null } | undefined {
    // A Cluster subscriber that moved without an event we heard (belt and braces: the watcher hears every one we know).
    if (this.cacheOn && this.watcher !== undefined && !this.watcher.holds()) this.resubscribe();
    // Only while the last liveness proof holds: a subscriber that died silently is not trusted past it, even when the
    // timer that would renew (or end) it runs late.
    if (this.cacheOn && performance.now() < this.liveness.until) {
      const token = this.tokenCache?.get(tokenId);
      const subj = subject === undefined ? undefined : this.subjectCache?.get(subject);
      if (token && (subject === undefined || subj)) {
        this.counters.hits++;
        return { token: token.entry, subject: subj?.entry ?? null };
      }
    }
    this.counters.misses++;
    return undefined;
  }

  /**
   * Taken before a read is sent: only a read that started while the subscription was confirmed live can be trusted
   * to be followed by the invalidation of anything revoked after Redis answered it. Undefined: not cacheable.
   */
  beforeRead(): number | undefined {
    return this.cacheOn && performance.now() < this.liveness.until ? this.epoch : undefined;
  }

  /** Caches what a read found, unless an invalidation, disconnect or resubscription since `beforeRead` may make it stale. */
  keep(ticket: number | undefined, tokenId: string, token: RevocationEntry | null, subject: string | undefined, subj: RevocationEntry | null): void {
    if (ticket === undefined || !this.cacheOn || ticket !== this.epoch) return;
    this.tokenCache?.set(tokenId, { entry: token });
    if (subject !== undefined) this.subjectCache?.set(subject, { entry: subj });
  }

  /**
   * Writes a revocation and publishes its invalidation (`write` runs the one script that does both, with the message),
   * then, with a subscriber, waits until every instance listening has dropped its cached lookup, so the next request
   * anywhere reads the revocation. close() ends that wait at once (StoreError: stored, unconfirmed), and a revoke that
   * has not sent its write by then sends none (StoreError: not stored).
   */
  async revoke(what: 't' | 's', id: string, write: (message: string, ackChannel: string) => Promise<[number, number]>): Promise<void> {
    if (this.closed) throw closedBeforeWrite();
    const confirm = this.subscriber !== undefined;
    const seq = ++this.seq;
    const message: Invalidation = { o: this.id, n: seq, a: confirm ? 1 : 0 };
    if (what === 't') message.t = id;
    else message.s = id;
    // Receivers treat a longer message as foreign: name nothing instead, which drops every cached lookup.
    if (JSON.stringify(message).length > MAX_INVALIDATION_CHARS) delete message[what];
    if (!confirm) {
      await this.call('revoke', () => (this.closed ? Promise.reject(closedBeforeWrite()) : write(JSON.stringify(message), this.ackChannel)));
      this.localInvalidate(what, id);
      return;
    }
    // Registered while still open (checked above, nothing awaited since): close() wakes every wait from here on.
    const signal = this.closeSignal();
    let done!: () => void;
    const confirmedAll = new Promise<void>((resolve) => (done = resolve));
    // Registered before the write: an acknowledgement may arrive before the write's own reply.
    const pending: PendingConfirm = { acks: 0, needed: Number.POSITIVE_INFINITY, echoed: false, done };
    this.pending.set(seq, pending);
    try {
      // A (re)subscription in flight (a store made a moment ago: the CLI's): published before it is in place, the
      // invalidation would never reach the own subscriber, and revoke would reject for nothing. Bounded by commandTimeout,
      // and ended by close() with its timer: raced outside the call, that timer would outlive close() (a process held open).
      if (this.subscribing !== undefined) await this.pubsubCall('SUBSCRIBE', () => Promise.race([this.subscribing, signal.closed])).catch(() => undefined);
      const clustered = (this.client as Cluster).isCluster === true;
      // Counted before publishing: a connection that subscribes later has an empty cache and need not answer.
      const expected = clustered ? await this.call('PUBSUB NUMSUB', () => countClusterListeners(this.client as Cluster, this.channel, this.ackChannel)) : undefined;
      // Closed meanwhile: nothing is sent, so the caller knows the revocation is not stored.
      if (this.closed) throw closedBeforeWrite();
      // Checked again when sent: a call waiting for the durability verdict may be admitted after close() began.
      const reply = await this.call('revoke', () => (this.closed ? Promise.reject(closedBeforeWrite()) : write(JSON.stringify(message), this.ackChannel)));
      this.localInvalidate(what, id);
      // The script counts, with the listeners, whether this instance's own subscriber is one of them (its ack channel).
      // One on a replica is not, yet hears its echo through replication: counting that echo as one of the listeners
      // would let revoke resolve before an instance that was counted has answered.
      const counts = expected ?? reply;
      const listening = counts[0] ?? 0;
      pending.needed = Math.max(0, listening - ((counts[1] ?? 0) >= 1 ? 1 : 0));
      if (pending.echoed && pending.acks >= pending.needed) return;
      await awaitConfirmations(pending, confirmedAll, signal.closed, this.confirmMs, listening);
    } finally {
      this.pending.delete(seq);
      signal.release();
    }
  }

  /** A promise close() resolves, for one revoke's waits, and its release when that revoke ends (nothing stays behind). */
  private closeSignal(): { closed: Promise<void>; release: () => void } {
    let wake!: () => void;
    const closed = new Promise<void>((resolve) => (wake = resolve));
    this.closeWaiters.add(wake);
    return { closed, release: () => this.closeWaiters.delete(wake) };
  }

  /** Turns the cache off for good, unsubscribes (within commandTimeout), then removes the listeners. Never quits the subscriber. */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.closed = true;
    for (const wake of this.closeWaiters) wake();
    this.cacheOff();
    this.watcher?.stop();
    const sub = this.subscriber;
    if (!sub) return;
    // The invalidation channel is the other near-caches' too while any of them is open on this connection.
    const channels = this.peers.some((p) => !p.closed) ? [this.ackChannel] : [this.channel, this.ackChannel];
    // Unsubscribed with the listeners still answering: until the UNSUBSCRIBE reaches Redis, it counts this connection
    // among those a revoke elsewhere must hear from (PUBSUB NUMSUB), and delivers that revoke's invalidation ahead of
    // the UNSUBSCRIBE's reply. Listeners removed first would hear it with no one to confirm, and that revoke (another
    // instance's, during a rolling deploy) would end unconfirmed. Bounded: a connection that is down does not hold it up.
    await this.pubsubCall('UNSUBSCRIBE', () => sub.unsubscribe(...channels)).catch(() => undefined);
    roomForListeners(sub, -1);
    for (const [event, fn] of this.handlers) sub.off(event, fn as (...args: unknown[]) => void);
    this.handlers.length = 0;
    const at = this.peers.indexOf(this);
    if (at >= 0) this.peers.splice(at, 1);
  }

  private listen(sub: Redis | Cluster): void {
    roomForListeners(sub, 1);
    const on = (event: string, fn: (...args: never[]) => void): void => {
      // An exception thrown by a listener escapes through the client's emit into the process (uncaught: every
      // instance down). None may: a handler that fails drops the near-cache instead, the safe side.
      const guarded = (...args: never[]): void => {
        try {
          fn(...args);
        } catch {
          this.dropCache();
        }
      };
      sub.on(event, guarded as (...args: unknown[]) => void);
      this.handlers.push([event, guarded]);
    };
    on('message', ((channel: unknown, message: unknown) => this.onMessage(channel, message)) as (...args: never[]) => void);
    // A subscriber that is not connected may miss invalidations: stop trusting the cache until resubscribed.
    const down = (): void => this.cacheOff();
    on('close', down);
    on('end', down);
    on('reconnecting', down);
    on('ready', () => this.resubscribe());
    // A Cluster's subscription moves between node connections unannounced: follow it, or cache nothing.
    if ((sub as Cluster).isCluster === true) {
      this.watcher = watchClusterSubscriber(sub as Cluster, { lost: () => this.cacheOff(), moved: () => this.resubscribe() });
      this.blind = this.watcher === undefined && this.tokenCache !== undefined;
      if (this.blind) warnUnfollowed();
    }
    this.resubscribe();
  }

  /** Subscribes without ever leaving a rejected promise unhandled (which would end the process). */
  private resubscribe(): void {
    this.subscribe().catch(() => this.cacheOff());
  }

  /** Forgets every cached lookup: for when something was revoked and we cannot tell what. */
  private dropCache(): void {
    this.epoch++;
    this.tokenCache?.clear();
    this.subjectCache?.clear();
  }

  private async subscribe(): Promise<void> {
    this.cacheOff();
    // Not the epoch: an invalidation or a local revoke during SUBSCRIBE must not keep the cache off for good.
    const generation = this.generation;
    const sub = this.subscriber;
    if (!sub || this.closed) return;
    const subscribing = (async () => {
      this.watcher?.sync();
      await sub.subscribe(this.channel, this.ackChannel);
    })();
    const settled = subscribing.then(
      () => undefined,
      () => undefined,
    );
    this.subscribing = settled;
    try {
      await subscribing;
    } catch {
      // Not subscribed: the cache stays off; the next 'ready' tries again.
      return;
    } finally {
      if (this.subscribing === settled) this.subscribing = undefined;
    }
    // Only a subscription that has not been interrupted since it started can make the cache trustworthy. SUBSCRIBE
    // succeeding proves nothing when the subscriber is connected to another server than the client (another URL, a
    // replica): the cache turns on only once the subscriber is proven to hear the client's server and be counted there.
    if (generation === this.generation && !this.closed) this.liveness.start();
  }

  /** The subscription was proven live: turns the cache on, when there is one. Returns whether it did. */
  private proven(): boolean {
    if (!this.tokenCache || this.blind || this.closed) return false;
    this.cacheOn = true;
    // Reads in flight started before the probe was heard: a revocation published before it may never have been heard
    // here, so none of them may be cached (they also saw cacheOn false; this bump makes it doubly so).
    this.epoch++;
    return true;
  }

  private cacheOff(): void {
    this.cacheOn = false;
    this.generation++;
    this.epoch++;
    this.liveness.reset();
    this.tokenCache?.clear();
    this.subjectCache?.clear();
  }

  private onMessage(channel: unknown, message: unknown): void {
    if (channel === this.ackChannel) {
      const seq = typeof message === 'string' && /^\d{1,15}$/.test(message) ? Number(message) : undefined;
      if (seq !== undefined) this.confirmed(seq);
      else if (typeof message !== 'string' || !this.liveness.heardOnAckChannel(message)) this.counters.foreign++;
      return;
    }
    if (channel !== this.channel) return;
    const msg = readInvalidation(message);
    if (msg?.p === 1) {
      // Names nothing: another instance's probe changes nothing here.
      if (msg.o === this.id) this.liveness.heardProbe(msg.n);
      return;
    }
    this.counters.invalidations++;
    if (msg === undefined) {
      // Not ours (anyone who can reach Redis can publish here): something may have been revoked and we cannot tell
      // what, so nothing cached can be trusted.
      this.counters.foreign++;
      this.dropCache();
      return;
    }
    if (msg.t !== undefined) this.localInvalidate('t', msg.t);
    else if (msg.s !== undefined) this.localInvalidate('s', msg.s);
    // Ours, naming nothing: an id too long to send, so everything goes.
    else this.dropCache();
    if (msg.a !== 1 || !this.answered.first(msg.o, msg.n)) return;
    if (msg.o === this.id) this.confirmed(msg.n, true);
    else if (this.answersFor(msg.o)) this.client.publish(this.keys.ackChannel(msg.o), String(msg.n)).catch(() => undefined);
  }

  /**
   * Whether this near-cache acknowledges `publisher`'s invalidation for its connection: Redis counted the connection
   * once, so a second answer from it would let a revoke resolve before another connection has dropped its cache.
   * A closing one answers until its UNSUBSCRIBE is through: it leaves the list only with its listeners.
   */
  private answersFor(publisher: string): boolean {
    const peers = this.peers;
    if (peers.length <= 1) return true;
    for (const p of peers) if (p.id === publisher) return false;
    return peers[0] === this;
  }

  private confirmed(seq: number, own = false): void {
    const p = this.pending.get(seq);
    if (!p) return;
    if (own) p.echoed = true;
    else p.acks++;
    if (p.echoed && p.acks >= p.needed) p.done();
  }

  private localInvalidate(what: 't' | 's', id: string): void {
    this.epoch++;
    if (what === 't') this.tokenCache?.delete(id);
    else this.subjectCache?.delete(id);
  }
}
