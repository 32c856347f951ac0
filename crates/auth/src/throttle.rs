//! Brute-force defence: failed logins slow down and then block their source address, and space
//! out password attempts on the account they aimed at.
//!
//! Two counters, both leaky buckets (each failure adds one; one is forgotten per `*_forget`
//! period, so a user's occasional typo fades away):
//! - **per address** ([`AddressKey`]: IPv4 address or IPv6 /64): after `free_failures` each
//!   further attempt from that address is answered only after a delay that doubles up to
//!   `max_delay`; at `block_after` the address is blocked for `block_time`. This stops one
//!   source guessing fast.
//! - **per account** (the login name as sent, lowercased; unknown names are counted too, so the
//!   counter does not reveal which names exist): after `account_free_failures` *password*
//!   attempts on that name are allowed only once per interval, doubling up to
//!   `account_max_wait`; attempts in between are refused without checking the password. This
//!   stops many sources sharing the guessing (password spraying), and costs the server no
//!   argon2 work. The account is never locked: app passwords are checked before and
//!   independently of this counter, so a user keeps logging in while their password is under
//!   attack.
//! - **known addresses**: the addresses (same [`AddressKey`] grouping) that logged in to an
//!   account successfully within `known_address_ttl` (30 days) are exempt from that account's
//!   spacing, so the owner's usual address still gets its password checked while a botnet
//!   sprays the account. They stay subject to their own address counter (delays, blocks).
//!   At most `known_addresses_per_account` (8) per account are kept, the most recent ones.
//!   Only successful logins add entries, so an attacker without a credential cannot grow the
//!   list; it lives in memory (a restart forgets it: the owner's first login after a restart
//!   is spaced like anyone's, one attempt per minute at worst).
//!
//! The caller decides what counts: only credential checks that failed, never protocol errors,
//! and only password-class failures on the account counter.
//!
//! Limits: memory is bounded by `max_tracked` entries per counter (and accounts with known
//! addresses, each with at most `known_addresses_per_account`); when full, entries that have
//! decayed to zero go first, then the least-failed one (never a blocked address while another
//! can go); known addresses go by age. Time comes from an injected [`Clock`], so tests need
//! not sleep.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::clock::Clock;
use crate::network::AddressKey;

/// The knobs of the brute-force defence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures from one address answered without delay.
    pub free_failures: u32,
    /// Longest delay before answering an attempt from a failing address (0: never delay).
    pub max_delay: Duration,
    /// Failures from one address that block it (0: never block).
    pub block_after: u32,
    /// How long a block lasts.
    pub block_time: Duration,
    /// How long until one failure of an address is forgotten.
    pub address_forget: Duration,
    /// Password failures on one account (from anywhere) before its attempts are spaced out
    /// (0: never).
    pub account_free_failures: u32,
    /// Longest spacing between password attempts on one account.
    pub account_max_wait: Duration,
    /// How long until one failure on an account is forgotten.
    pub account_forget: Duration,
    /// Addresses, and accounts, tracked at most (each): the memory bound.
    pub max_tracked: usize,
    /// How long a successful login exempts its address from the account's spacing
    /// (0: never).
    pub known_address_ttl: Duration,
    /// Known addresses kept per account (the most recent ones).
    pub known_addresses_per_account: usize,
}

impl Default for ThrottlePolicy {
    /// 3 free failures, then 1, 2, 4, 8 s; block after 10 for 15 minutes; a failure fades in
    /// 3 minutes. Accounts: 5 free password failures, then at most one attempt per 1, 2, 4 …
    /// 60 s; a failure fades in 10 minutes. 65 536 entries (a few MiB) per counter. An address
    /// that logged in to an account in the last 30 days is exempt from its spacing; 8 such
    /// addresses are kept per account.
    fn default() -> Self {
        Self {
            free_failures: 3,
            max_delay: Duration::from_secs(8),
            block_after: 10,
            block_time: Duration::from_secs(15 * 60),
            address_forget: Duration::from_secs(3 * 60),
            account_free_failures: 5,
            account_max_wait: Duration::from_secs(60),
            account_forget: Duration::from_secs(10 * 60),
            max_tracked: 65_536,
            known_address_ttl: Duration::from_secs(30 * 24 * 3600),
            known_addresses_per_account: 8,
        }
    }
}

/// What the address counter says about a new attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressVerdict {
    /// Go ahead, after waiting this long (zero: at once).
    Proceed(Duration),
    /// The address is blocked until this time (since the Unix epoch).
    Blocked(Duration),
}

/// One counter's entry.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    /// Failures × 1000, decayed up to `updated`.
    milli: u64,
    /// When `milli` was last decayed.
    updated: Duration,
    /// The most recent failure.
    last_failure: Duration,
    /// A block in force until then.
    blocked_until: Option<Duration>,
}

impl Entry {
    fn decay(&mut self, now: Duration, forget: Duration) {
        let elapsed = now.saturating_sub(self.updated).as_millis();
        let forget = forget.as_millis().max(1);
        let forgotten = u64::try_from(elapsed.saturating_mul(1000) / forget).unwrap_or(u64::MAX);
        self.milli = self.milli.saturating_sub(forgotten);
        self.updated = now;
    }

    /// Failures, a partly forgotten one counting whole: the fifth failure within a few seconds
    /// is the fifth, not "4.98".
    fn failures(&self) -> u32 {
        u32::try_from(self.milli.div_ceil(1000)).unwrap_or(u32::MAX)
    }

    fn blocked_at(&self, now: Duration) -> Option<Duration> {
        self.blocked_until.filter(|until| *until > now)
    }
}

/// A bounded map of counters.
#[derive(Debug)]
struct Table<K> {
    entries: HashMap<K, Entry>,
    forget: Duration,
}

impl<K: Eq + Hash + Clone> Table<K> {
    fn new(forget: Duration) -> Self {
        Self { entries: HashMap::new(), forget }
    }

    /// The decayed entry of `key`, if tracked.
    fn current(&mut self, key: &K, now: Duration) -> Option<Entry> {
        let forget = self.forget;
        self.entries.get_mut(key).map(|e| {
            e.decay(now, forget);
            *e
        })
    }

    /// The decayed entry of `key`, created if needed (evicting to stay within `max`).
    fn entry(&mut self, key: K, now: Duration, max: usize) -> &mut Entry {
        if !self.entries.contains_key(&key) && self.entries.len() >= max.max(1) {
            self.evict(now, max.max(1));
        }
        let forget = self.forget;
        let e = self.entries.entry(key).or_insert(Entry { updated: now, ..Entry::default() });
        e.decay(now, forget);
        e
    }

    fn evict(&mut self, now: Duration, max: usize) {
        let forget = self.forget;
        self.entries.retain(|_, e| {
            e.decay(now, forget);
            e.milli > 0 || e.blocked_at(now).is_some()
        });
        if self.entries.len() < max {
            return;
        }
        // Still full of live entries: drop the least dangerous one. Blocked entries sort last,
        // then by expiry, so a block is only dropped when nothing else is left.
        let victim = self
            .entries
            .iter()
            .min_by_key(|(_, e)| (e.blocked_at(now).is_some(), e.blocked_until, e.milli))
            .map(|(k, _)| k.clone());
        if let Some(k) = victim {
            self.entries.remove(&k);
        }
    }
}

/// Failure counters per address and per account, with an injected clock.
#[derive(Debug)]
pub struct Throttle {
    policy: ThrottlePolicy,
    clock: Arc<dyn Clock>,
    addresses: Mutex<Table<AddressKey>>,
    accounts: Mutex<Table<String>>,
    /// Per account key: addresses that logged in successfully, with the time of the latest
    /// success, oldest first.
    known: Mutex<HashMap<String, VecDeque<(AddressKey, Duration)>>>,
}

impl Throttle {
    /// Empty counters under `policy`.
    pub fn new(policy: ThrottlePolicy, clock: Arc<dyn Clock>) -> Self {
        Self {
            addresses: Mutex::new(Table::new(policy.address_forget)),
            accounts: Mutex::new(Table::new(policy.account_forget)),
            known: Mutex::new(HashMap::new()),
            policy,
            clock,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &ThrottlePolicy {
        &self.policy
    }

    /// Whether an attempt from `address` may go ahead, and after what delay.
    pub fn check_address(&self, address: AddressKey) -> AddressVerdict {
        let now = self.clock.now();
        let Some(entry) = lock(&self.addresses).current(&address, now) else {
            return AddressVerdict::Proceed(Duration::ZERO);
        };
        if let Some(until) = entry.blocked_at(now) {
            return AddressVerdict::Blocked(until);
        }
        AddressVerdict::Proceed(self.delay_for(entry.failures()))
    }

    fn delay_for(&self, failures: u32) -> Duration {
        let Some(over) = failures.checked_sub(self.policy.free_failures) else {
            return Duration::ZERO;
        };
        doubling(over).min(self.policy.max_delay)
    }

    /// How long password attempts on `account` must still wait; `None` when one may go ahead.
    pub fn account_wait(&self, account: &str) -> Option<Duration> {
        if self.policy.account_free_failures == 0 {
            return None;
        }
        let now = self.clock.now();
        let entry = lock(&self.accounts).current(&account_key(account), now)?;
        let over = entry.failures().checked_sub(self.policy.account_free_failures)?;
        let next = entry.last_failure.saturating_add(doubling(over).min(self.policy.account_max_wait));
        (next > now).then(|| next - now)
    }

    /// [`Throttle::account_wait`] for an attempt from `address`: `None` at once when the
    /// address is known to the account (a recent successful login from it).
    pub fn account_wait_from(&self, account: &str, address: AddressKey) -> Option<Duration> {
        if self.is_known_address(account, address) {
            return None;
        }
        self.account_wait(account)
    }

    /// Whether `address` logged in to `account` successfully within `known_address_ttl`.
    pub fn is_known_address(&self, account: &str, address: AddressKey) -> bool {
        let ttl = self.policy.known_address_ttl;
        if ttl.is_zero() {
            return false;
        }
        let now = self.clock.now();
        lock(&self.known)
            .get(&account_key(account))
            .is_some_and(|list| list.iter().any(|(a, at)| *a == address && now.saturating_sub(*at) < ttl))
    }

    /// Counts a failed attempt from `address`, and against `account` when it tested the
    /// account's password. Returns the end of a block when this failure started one.
    pub fn record_failure(&self, address: AddressKey, account: Option<&str>) -> Option<Duration> {
        let now = self.clock.now();
        if let Some(name) = account
            && self.policy.account_free_failures > 0
        {
            let mut accounts = lock(&self.accounts);
            let e = accounts.entry(account_key(name), now, self.policy.max_tracked);
            e.milli = e.milli.saturating_add(1000);
            e.last_failure = now;
        }
        let mut addresses = lock(&self.addresses);
        let e = addresses.entry(address, now, self.policy.max_tracked);
        e.milli = e.milli.saturating_add(1000);
        e.last_failure = now;
        if self.policy.block_after > 0
            && e.failures() >= self.policy.block_after
            && e.blocked_at(now).is_none()
        {
            let until = now.saturating_add(self.policy.block_time);
            e.blocked_until = Some(until);
            // After the block the address starts afresh.
            e.milli = 0;
            return Some(until);
        }
        None
    }

    /// A successful login to `account` (the name as sent) from `address`: the address's
    /// failures are forgotten (not the account's: the attack on the password may go on while
    /// its owner logs in), and the address becomes known to the account.
    pub fn record_success(&self, address: AddressKey, account: &str) {
        let now = self.clock.now();
        {
            let mut addresses = lock(&self.addresses);
            if addresses.current(&address, now).is_some_and(|e| e.blocked_at(now).is_none()) {
                addresses.entries.remove(&address);
            }
        }
        self.remember_address(account_key(account), address, now);
    }

    /// Notes `address` as known to `account`, within the per-account and total bounds.
    fn remember_address(&self, account: String, address: AddressKey, now: Duration) {
        let (ttl, per_account) = (self.policy.known_address_ttl, self.policy.known_addresses_per_account);
        if ttl.is_zero() || per_account == 0 {
            return;
        }
        let mut known = lock(&self.known);
        if !known.contains_key(&account) && known.len() >= self.policy.max_tracked.max(1) {
            // Full: forget expired addresses, then, if still full, the account whose latest
            // success is the oldest.
            known.retain(|_, list| {
                list.retain(|(_, at)| now.saturating_sub(*at) < ttl);
                !list.is_empty()
            });
            if known.len() >= self.policy.max_tracked.max(1) {
                let stalest = known
                    .iter()
                    .min_by_key(|(_, list)| list.back().map(|(_, at)| *at))
                    .map(|(k, _)| k.clone());
                if let Some(k) = stalest {
                    known.remove(&k);
                }
            }
        }
        let list = known.entry(account).or_default();
        list.retain(|(a, at)| *a != address && now.saturating_sub(*at) < ttl);
        while list.len() >= per_account {
            list.pop_front();
        }
        list.push_back((address, now));
    }

    /// Blocks `address` until `until` (a block loaded from the store).
    pub fn block(&self, address: AddressKey, until: Duration) {
        let now = self.clock.now();
        if until > now {
            lock(&self.addresses).entry(address, now, self.policy.max_tracked).blocked_until = Some(until);
        }
    }

    /// Lifts the block of `address` and forgets its failures.
    pub fn unblock(&self, address: AddressKey) {
        lock(&self.addresses).entries.remove(&address);
    }

    /// Tracked addresses and accounts (for tests and metrics).
    pub fn tracked(&self) -> (usize, usize) {
        (lock(&self.addresses).entries.len(), lock(&self.accounts).entries.len())
    }

    /// Accounts with known addresses, and known addresses in all (for tests and metrics).
    pub fn known_addresses(&self) -> (usize, usize) {
        let known = lock(&self.known);
        (known.len(), known.values().map(VecDeque::len).sum())
    }
}

/// 1 s, 2 s, 4 s, … for 0, 1, 2, … failures over the free allowance.
fn doubling(over: u32) -> Duration {
    Duration::from_secs(1u64.checked_shl(over).unwrap_or(u64::MAX))
}

/// The counter key of a login name: lowercased (names are case-insensitive in the store) and
/// bounded, so a huge name cannot take memory.
fn account_key(name: &str) -> String {
    name.chars().take(256).flat_map(char::to_lowercase).collect()
}

/// Locks a counter table. A panic while holding the lock cannot leave a table inconsistent
/// (every update is a few plain assignments), so a poisoned lock is used as it is.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn setup(policy: ThrottlePolicy) -> (Throttle, ManualClock) {
        let clock = ManualClock::new(Duration::from_secs(1_000_000));
        (Throttle::new(policy, Arc::new(clock.clone())), clock)
    }

    fn addr(s: &str) -> AddressKey {
        AddressKey::of(s.parse().unwrap())
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn an_address_is_slowed_then_blocked_then_forgiven() {
        let (t, clock) = setup(ThrottlePolicy::default());
        let a = addr("192.0.2.1");
        let mut delays = Vec::new();
        for _ in 0..9 {
            match t.check_address(a) {
                AddressVerdict::Proceed(d) => delays.push(d.as_secs()),
                AddressVerdict::Blocked(_) => panic!("blocked too early"),
            }
            assert_eq!(t.record_failure(a, None), None);
        }
        assert_eq!(delays, [0, 0, 0, 1, 2, 4, 8, 8, 8]);
        // A little time passing does not turn the tenth failure into "9.99".
        clock.advance(SECOND);
        let until = t.record_failure(a, None).expect("the tenth failure blocks");
        assert_eq!(until, clock.now() + Duration::from_secs(900));
        assert_eq!(t.check_address(a), AddressVerdict::Blocked(until));
        // Other addresses are not affected.
        assert_eq!(t.check_address(addr("192.0.2.2")), AddressVerdict::Proceed(Duration::ZERO));
        // The block ends on time, and the address starts afresh.
        clock.advance(Duration::from_secs(900));
        assert_eq!(t.check_address(a), AddressVerdict::Proceed(Duration::ZERO));
    }

    #[test]
    fn failures_fade_so_typos_never_add_up() {
        let (t, clock) = setup(ThrottlePolicy::default());
        let a = addr("192.0.2.1");
        // One failure every three minutes, forever: never a delay.
        for _ in 0..50 {
            assert_eq!(t.check_address(a), AddressVerdict::Proceed(Duration::ZERO));
            assert_eq!(t.record_failure(a, Some("alice")), None);
            clock.advance(Duration::from_secs(180));
        }
    }

    #[test]
    fn success_clears_the_address_but_not_the_account() {
        let (t, _clock) = setup(ThrottlePolicy::default());
        let a = addr("192.0.2.1");
        for _ in 0..6 {
            t.record_failure(a, Some("alice"));
        }
        assert!(matches!(t.check_address(a), AddressVerdict::Proceed(d) if d > Duration::ZERO));
        assert!(t.account_wait("ALICE").is_some(), "names are case-insensitive");
        t.record_success(a, "alice");
        assert_eq!(t.check_address(a), AddressVerdict::Proceed(Duration::ZERO));
        assert!(t.account_wait("alice").is_some());
    }

    #[test]
    fn distributed_guessing_is_spaced_out_per_account() {
        let (t, clock) = setup(ThrottlePolicy::default());
        // Five addresses, one guess each: within the free allowance.
        for i in 0..5 {
            assert_eq!(t.account_wait("alice"), None);
            t.record_failure(addr(&format!("198.51.100.{i}")), Some("alice"));
        }
        // The sixth (from yet another address) must wait a second after the last failure.
        assert_eq!(t.account_wait("alice"), Some(SECOND));
        clock.advance(SECOND);
        assert_eq!(t.account_wait("alice"), None);
        t.record_failure(addr("198.51.100.9"), Some("alice"));
        assert_eq!(t.account_wait("alice"), Some(2 * SECOND));
        clock.advance(2 * SECOND);
        t.record_failure(addr("198.51.100.9"), Some("alice"));
        assert_eq!(t.account_wait("alice"), Some(4 * SECOND));
        // The spacing tops out at a minute however long the attack goes on.
        for _ in 0..20 {
            t.record_failure(addr("198.51.100.10"), Some("alice"));
        }
        assert_eq!(t.account_wait("alice"), Some(Duration::from_secs(60)));
        // Another account is not affected, and no address entry blocks the real user's
        // address either.
        assert_eq!(t.account_wait("bob"), None);
        assert_eq!(t.check_address(addr("203.0.113.5")), AddressVerdict::Proceed(Duration::ZERO));
    }

    #[test]
    fn the_owners_address_is_not_spaced_out_during_a_distributed_attack() {
        let (t, clock) = setup(ThrottlePolicy::default());
        let owner = addr("203.0.113.5");
        let owner_v6 = addr("2001:db8:1:2::1");
        t.record_success(owner, "Alice");
        t.record_success(owner_v6, "alice");
        clock.advance(Duration::from_secs(29 * 24 * 3600));
        // A botnet sprays alice's password: the account is spaced out for everyone else.
        for i in 0..30 {
            t.record_failure(addr(&format!("198.51.100.{i}")), Some("alice"));
        }
        assert_eq!(t.account_wait("alice"), Some(Duration::from_secs(60)));
        assert_eq!(t.account_wait_from("alice", addr("192.0.2.77")), Some(Duration::from_secs(60)));
        // The owner's addresses (case-insensitive name, IPv6 by /64) go ahead.
        assert_eq!(t.account_wait_from("ALICE", owner), None);
        assert_eq!(t.account_wait_from("alice", addr("2001:db8:1:2::ffff")), None);
        // Known to alice only, not to other accounts.
        t.record_failure(addr("198.51.100.1"), Some("bob"));
        for _ in 0..10 {
            t.record_failure(addr("198.51.100.2"), Some("bob"));
        }
        assert!(t.account_wait_from("bob", owner).is_some());
        // Still subject to its own address counter.
        for _ in 0..9 {
            t.record_failure(owner, Some("alice"));
        }
        assert!(t.record_failure(owner, Some("alice")).is_some(), "the owner's address can be blocked");
        assert!(matches!(t.check_address(owner), AddressVerdict::Blocked(_)));
        // After 30 days without a login the address is a stranger again.
        clock.advance(Duration::from_secs(24 * 3600));
        for i in 0..30 {
            t.record_failure(addr(&format!("198.51.100.{i}")), Some("alice"));
        }
        assert!(t.account_wait_from("alice", owner_v6).is_some());
    }

    #[test]
    fn known_addresses_are_bounded() {
        let policy = ThrottlePolicy { max_tracked: 50, ..ThrottlePolicy::default() };
        let (t, clock) = setup(policy);
        // One account, many addresses: the 8 most recent are kept.
        for i in 0..100u32 {
            t.record_success(AddressKey::V4(std::net::Ipv4Addr::from_bits(0x0a00_0000 + i)), "alice");
            clock.advance(SECOND);
        }
        assert_eq!(t.known_addresses(), (1, 8));
        assert!(t.is_known_address("alice", addr("10.0.0.99")));
        assert!(!t.is_known_address("alice", addr("10.0.0.91")));
        // Many accounts: at most `max_tracked`, the stalest go first.
        for i in 0..1000u32 {
            t.record_success(addr("192.0.2.1"), &format!("user{i}"));
            clock.advance(SECOND);
        }
        let (accounts, addresses) = t.known_addresses();
        assert!(accounts <= 50 && addresses <= 50 * 8, "{accounts} {addresses}");
        assert!(t.is_known_address("user999", addr("192.0.2.1")));
        assert!(!t.is_known_address("alice", addr("10.0.0.99")), "the stalest account went");
        // Switched off: nothing is remembered.
        let off = ThrottlePolicy { known_address_ttl: Duration::ZERO, ..ThrottlePolicy::default() };
        let (t, _clock) = setup(off);
        t.record_success(addr("192.0.2.1"), "alice");
        assert_eq!(t.known_addresses(), (0, 0));
        assert!(!t.is_known_address("alice", addr("192.0.2.1")));
    }

    #[test]
    fn blocks_can_be_loaded_and_lifted() {
        let (t, clock) = setup(ThrottlePolicy::default());
        let a = addr("2001:db8::1");
        let until = clock.now() + Duration::from_secs(60);
        t.block(a, until);
        assert_eq!(t.check_address(addr("2001:db8::2")), AddressVerdict::Blocked(until), "same /64");
        t.unblock(a);
        assert_eq!(t.check_address(a), AddressVerdict::Proceed(Duration::ZERO));
        // Expired blocks are not loaded.
        t.block(a, clock.now());
        assert_eq!(t.check_address(a), AddressVerdict::Proceed(Duration::ZERO));
    }

    #[test]
    fn zero_settings_switch_parts_off() {
        let policy = ThrottlePolicy {
            max_delay: Duration::ZERO,
            block_after: 0,
            account_free_failures: 0,
            ..ThrottlePolicy::default()
        };
        let (t, _clock) = setup(policy);
        let a = addr("192.0.2.1");
        for _ in 0..100 {
            assert_eq!(t.record_failure(a, Some("alice")), None);
        }
        assert_eq!(t.check_address(a), AddressVerdict::Proceed(Duration::ZERO));
        assert_eq!(t.account_wait("alice"), None);
    }

    #[test]
    fn memory_stays_bounded_and_blocks_survive_a_flood() {
        let policy = ThrottlePolicy { max_tracked: 100, block_after: 2, ..ThrottlePolicy::default() };
        let (t, _clock) = setup(policy);
        let blocked = addr("192.0.2.1");
        t.record_failure(blocked, None);
        assert!(t.record_failure(blocked, None).is_some());
        for i in 0..10_000u32 {
            let ip = std::net::Ipv4Addr::from_bits(0x0a00_0000 + i);
            t.record_failure(AddressKey::V4(ip), Some(&format!("user{i}")));
        }
        let (addresses, accounts) = t.tracked();
        assert!(addresses <= 100 && accounts <= 100, "{addresses} {accounts}");
        assert!(matches!(t.check_address(blocked), AddressVerdict::Blocked(_)));
        // Huge names are cut, not stored whole.
        t.record_failure(addr("192.0.2.3"), Some(&"x".repeat(1_000_000)));
        assert!(t.tracked().1 <= 100);
    }
}
