// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/// @title Cambrian settlement: majority-voted microtask results, rewards by pull payment.
/// @notice See docs/CONTRACT.md for the rules, the batch semantics and the gas figures.
contract Settlement is AccessControl, EIP712, ReentrancyGuardTransient {
    bytes32 public constant COORDINATOR_ROLE = keccak256("COORDINATOR_ROLE");
    bytes32 public constant SESSION_GRANT_TYPEHASH =
        keccak256("SessionGrant(address worker,address sessionKey,uint64 expiresAt)");
    bytes32 public constant RESULT_VOTE_TYPEHASH = keccak256("ResultVote(bytes32 taskId,bytes32 digest,address worker)");
    /// @notice Upper bound on votes per settlement, so one settlement's gas stays bounded.
    uint256 public constant MAX_VOTES = 64;

    struct Vote {
        address worker;
        bytes32 digest;
        address sessionKey;
        uint64 sessionExpiry;
        bytes grantSig;
        bytes voteSig;
    }

    /// @dev Named like the contract on purpose (the ABI's `Settlement` tuple); solc warns about the shadowing.
    struct Settlement {
        bytes32 taskId;
        uint32 valCorrect;
        uint32 valCount;
        int64 valLoss;
        bytes32 weightsHash;
        bytes32 traceRoot;
        Vote[] votes;
    }

    /// @dev What `settle` carries from one settlement of a batch to the next (in memory).
    struct Batch {
        uint256 reward;
        uint256 quorum;
        /// @dev The pool left; written back once, at the end.
        uint256 remaining;
        /// @dev The batch's ledger of accounts (see `_ledgerNew`).
        uint256 ledger;
        bytes32 domain;
    }

    /// @dev Everything `settle` reads and writes once per batch, packed in one slot.
    struct Config {
        uint128 pool;
        uint96 rewardPerTask;
        uint32 minQuorum;
    }

    /// @dev Per worker, one slot (a fresh slot costs 20,000 gas, an update 2,900, so everything a
    ///      returning worker touches lives here): credits until claimed, strikes, a `seen` flag that keeps
    ///      the slot non-zero after a full claim, and the grant cache: the first 16 bytes of
    ///      keccak256(sessionKey, expiresAt) of the last grant whose signature was verified. Forging a
    ///      cache hit means finding a key and expiry with the same 128-bit tag (a second preimage).
    struct Account {
        uint96 owed;
        uint24 strikes;
        bool seen;
        bytes16 sessionTag;
    }

    Config private _config;
    mapping(address worker => Account) private _accounts;
    /// @dev The settled result digest per task; zero means "not settled" (keccak256 never yields zero in practice).
    mapping(bytes32 taskId => bytes32 digest) private _settled;
    /// @dev Session keys their worker revoked; read only when a grant is not cached.
    mapping(address worker => mapping(address sessionKey => bool)) private _revoked;

    event TaskSettled(
        bytes32 indexed taskId,
        bytes32 digest,
        uint32 valCorrect,
        uint32 valCount,
        int64 valLoss,
        address[] winners,
        address[] dissenters
    );
    event Funded(address indexed sponsor, uint256 amount, uint256 pool);
    event Claimed(address indexed worker, uint256 amount);
    event SessionRevoked(address indexed worker, address indexed sessionKey);
    event RewardPerTaskSet(uint256 rewardPerTask);
    event MinQuorumSet(uint256 minQuorum);

    // Rejections inside a batch carry `index`, the position of the offending settlement in the batch.
    error AlreadySettled(uint256 index, bytes32 taskId);
    error TooFewVotes(uint256 index, uint256 votes, uint256 minQuorum);
    error TooManyVotes(uint256 index, uint256 votes, uint256 maxVotes);
    error DuplicateWorker(uint256 index, address worker);
    error InvalidVoteSignature(uint256 index, address worker);
    error InvalidGrantSignature(uint256 index, address worker);
    error MalleableSignature(uint256 index, address worker);
    error SessionExpired(uint256 index, address worker, uint64 expiresAt);
    error SessionKeyRevoked(uint256 index, address worker, address sessionKey);
    error NoMajority(uint256 index, bytes32 taskId);
    error QuorumNotReached(uint256 index, uint256 agreeing, uint256 minQuorum);
    error MetricsMismatch(uint256 index, bytes32 majorityDigest, bytes32 metricsDigest);
    error NothingToClaim(address worker);
    error TransferFailed(address worker, uint256 amount);
    error ZeroFunding();
    error PoolOverflow();
    error InvalidQuorum(uint256 minQuorum);
    error RewardTooLarge(uint256 rewardPerTask);

    constructor(address admin, address coordinator, uint256 rewardPerTask_, uint256 minQuorum_)
        EIP712("Cambrian", "1")
    {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(COORDINATOR_ROLE, coordinator);
        _setRewardPerTask(rewardPerTask_);
        _setMinQuorum(minQuorum_);
    }

    // ---------------------------------------------------------------- sponsor and owner

    /// @notice Adds the sent value to the reward pool.
    function fund() external payable {
        if (msg.value == 0) revert ZeroFunding();
        uint256 balance = uint256(_config.pool) + msg.value;
        if (balance > type(uint96).max) revert PoolOverflow();
        _config.pool = uint128(balance);
        emit Funded(msg.sender, msg.value, balance);
    }

    function setRewardPerTask(uint256 rewardPerTask_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setRewardPerTask(rewardPerTask_);
    }

    function setMinQuorum(uint256 minQuorum_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setMinQuorum(minQuorum_);
    }

    // ---------------------------------------------------------------- workers

    /// @notice Pays the caller everything it is owed. Checks-effects-interactions plus a reentrancy guard.
    function claim() external nonReentrant returns (uint256 amount) {
        Account storage account = _accounts[msg.sender];
        amount = account.owed;
        if (amount == 0) revert NothingToClaim(msg.sender);
        account.owed = 0;
        emit Claimed(msg.sender, amount);
        (bool ok,) = payable(msg.sender).call{value: amount}("");
        if (!ok) revert TransferFailed(msg.sender, amount);
    }

    /// @notice Revokes a session key of the caller for good: no later vote signed by it settles.
    ///         It also drops the caller's grant cache, so its other keys get their grants checked again.
    function revokeSession(address sessionKey) external {
        _revoked[msg.sender][sessionKey] = true;
        _accounts[msg.sender].sessionTag = bytes16(0);
        emit SessionRevoked(msg.sender, sessionKey);
    }

    // ---------------------------------------------------------------- coordinator

    /// @notice Settles a batch of tasks, all or nothing: any invalid settlement reverts the whole batch
    ///         with a custom error naming its index.
    function settle(Settlement[] calldata batch) external onlyRole(COORDINATOR_ROLE) {
        Config memory config = _config;
        Batch memory b = Batch({
            reward: config.rewardPerTask,
            quorum: config.minQuorum,
            remaining: config.pool,
            ledger: _ledgerNew(batch.length),
            domain: _domainSeparatorV4()
        });
        for (uint256 i; i < batch.length; ++i) {
            _settleOne(i, batch[i], b);
        }
        _ledgerFlush(b.ledger);
        if (b.remaining != config.pool) _config.pool = uint128(b.remaining);
    }

    // ---------------------------------------------------------------- views

    function settled(bytes32 taskId) external view returns (bool) {
        return _settled[taskId] != 0;
    }

    /// @notice The digest a settled task was settled with (zero if not settled).
    function settledDigest(bytes32 taskId) external view returns (bytes32) {
        return _settled[taskId];
    }

    function owed(address worker) external view returns (uint256) {
        return _accounts[worker].owed;
    }

    function strikes(address worker) external view returns (uint256) {
        return _accounts[worker].strikes;
    }

    /// @notice Reward-pool balance not yet credited to anyone.
    function pool() external view returns (uint256) {
        return _config.pool;
    }

    function rewardPerTask() external view returns (uint256) {
        return _config.rewardPerTask;
    }

    function minQuorum() external view returns (uint256) {
        return _config.minQuorum;
    }

    /// @notice Whether votes under this grant may omit grantSig: its signature was verified and cached.
    function grantCached(address worker, address sessionKey, uint64 expiresAt) external view returns (bool) {
        return _accounts[worker].sessionTag == _sessionTag(sessionKey, expiresAt);
    }

    function sessionRevoked(address worker, address sessionKey) external view returns (bool) {
        return _revoked[worker][sessionKey];
    }

    /// @notice The EIP-712 hash a session key signs for a vote; lets clients cross-check their hashing.
    function voteHash(bytes32 taskId, bytes32 digest, address worker) external view returns (bytes32) {
        return _hashTypedDataV4(_hash4(RESULT_VOTE_TYPEHASH, taskId, digest, bytes32(uint256(uint160(worker)))));
    }

    /// @notice The EIP-712 hash a worker signs for a session grant.
    function grantHash(address worker, address sessionKey, uint64 expiresAt) external view returns (bytes32) {
        return _hashTypedDataV4(_grantStructHash(worker, sessionKey, expiresAt));
    }

    /// @notice keccak256(abi.encode(taskId, valCorrect, valCount, valLoss, weightsHash, traceRoot)).
    function resultDigest(
        bytes32 taskId,
        uint32 valCorrect,
        uint32 valCount,
        int64 valLoss,
        bytes32 weightsHash,
        bytes32 traceRoot
    ) external pure returns (bytes32) {
        return keccak256(abi.encode(taskId, valCorrect, valCount, valLoss, weightsHash, traceRoot));
    }

    // ---------------------------------------------------------------- internals

    // The batch's ledger of accounts (see below): key flags and table sizes.
    uint256 private constant _KEY_USED = 1 << 160;
    uint256 private constant _KEY_DIRTY = 1 << 161;
    uint256 private constant _LEDGER_MIN = 16;
    uint256 private constant _LEDGER_MAX = 512;

    // Vote rejections found in assembly, raised as custom errors by `_rejectVote`.
    uint256 private constant _DUPLICATE = 1;
    uint256 private constant _MALLEABLE_VOTE = 2;
    uint256 private constant _INVALID_VOTE = 3;
    uint256 private constant _EXPIRED = 4;
    uint256 private constant _GRANT_NOT_CACHED = 5;

    /// @dev Settles one task or reverts; updates the pool left in `b`.
    ///      The votes are read from calldata once, into a table in memory of three words per vote
    ///      (worker, digest, the worker's ledger entry) that the later passes read.
    function _settleOne(
        uint256 index,
        Settlement calldata s,
        Batch memory b
    ) private {
        bytes32 taskId = s.taskId;
        uint256 settledSlot;
        bytes32 previous;
        assembly ("memory-safe") {
            mstore(0x00, taskId)
            mstore(0x20, _settled.slot)
            settledSlot := keccak256(0x00, 0x40)
            previous := sload(settledSlot)
        }
        if (previous != 0) revert AlreadySettled(index, taskId);
        Vote[] calldata votes = s.votes;
        uint256 n = votes.length;
        uint256 quorum = b.quorum;
        if (n < quorum) revert TooFewVotes(index, n, quorum);
        if (n > MAX_VOTES) revert TooManyVotes(index, n, MAX_VOTES);
        uint256 ledger = _ledgerReserve(b.ledger, n);
        b.ledger = ledger;

        uint256 table;
        assembly ("memory-safe") {
            table := mload(0x40)
            mstore(0x40, add(table, mul(0x60, n)))
        }
        bytes32 majority = _authenticateAndFindCandidate(index, taskId, votes, table, ledger, b.domain);
        uint256 winners;
        assembly ("memory-safe") {
            for { let e := table let end := add(table, mul(0x60, n)) } lt(e, end) { e := add(e, 0x60) } {
                winners := add(winners, eq(mload(add(e, 0x20)), majority))
            }
        }
        if (2 * winners <= n) revert NoMajority(index, taskId);
        if (winners < quorum) revert QuorumNotReached(index, winners, quorum);
        bytes32 digest = _metricsDigest(s);
        if (digest != majority) revert MetricsMismatch(index, majority, digest);

        assembly ("memory-safe") {
            sstore(settledSlot, digest)
        }
        // When the pool runs dry, the task still settles and its winners share what is left (possibly 0).
        uint256 reward = b.reward;
        uint256 remaining = b.remaining;
        uint256 each = (reward < remaining ? reward : remaining) / winners;
        _creditAndEmit(s, table, n, digest, winners, each);
        assembly ("memory-safe") {
            // The vote table is not needed any more: give its memory back.
            mstore(0x40, table)
        }
        b.remaining = remaining - each * winners;
    }

    /// @dev Authenticates every vote, rejects duplicate workers and returns the Boyer–Moore majority
    ///      candidate (the only digest that can hold more than half of the votes). Fills `table`.
    ///      One assembly loop does the common case (own-key votes and cached grants); it stops at a
    ///      rejected vote or at a grant to verify, which Solidity handles before the loop resumes.
    function _authenticateAndFindCandidate(
        uint256 index,
        bytes32 taskId,
        Vote[] calldata votes,
        uint256 table,
        uint256 ledger,
        bytes32 domain
    ) private returns (bytes32 candidate) {
        uint256 lead;
        uint256 j;
        bytes32 voteTypeHash = RESULT_VOTE_TYPEHASH;
        while (true) {
            uint256 halt;
            uint256 v;
            assembly ("memory-safe") {
                // The ledger entry of `worker` (key word; the value is the next word), loading its account
                // slot on first use. There is room: `_ledgerReserve` saw to it.
                function entryOf(ledger_, worker_) -> entry {
                    let mask := mload(ledger_)
                    let entries := add(ledger_, 0x40)
                    let i := and(worker_, mask)
                    for {} 1 {} {
                        entry := add(entries, shl(6, i))
                        let k := mload(entry)
                        if iszero(k) {
                            mstore(entry, or(worker_, _KEY_USED))
                            mstore(0x00, worker_)
                            mstore(0x20, _accounts.slot)
                            mstore(add(entry, 0x20), sload(keccak256(0x00, 0x40)))
                            let count := mload(add(ledger_, 0x20))
                            mstore(add(add(entries, shl(6, add(mask, 1))), shl(5, count)), entry)
                            mstore(add(ledger_, 0x20), add(count, 1))
                            break
                        }
                        if eq(and(k, 0xffffffffffffffffffffffffffffffffffffffff), worker_) { break }
                        i := and(add(i, 1), mask)
                    }
                }

                let n := votes.length
                for {} lt(j, n) { j := add(j, 1) } {
                    // The vote's position, checked like Solidity's decoder checks it.
                    let rel := calldataload(add(votes.offset, shl(5, j)))
                    v := add(votes.offset, rel)
                    if or(gt(rel, calldatasize()), gt(add(v, 0xc0), calldatasize())) { revert(0, 0) }
                    let worker := calldataload(v)
                    let digest := calldataload(add(v, 0x20))
                    let sessionKey := calldataload(add(v, 0x40))
                    // Like Solidity's decoder: an address with dirty upper bits is malformed calldata.
                    if or(shr(160, worker), shr(160, sessionKey)) { revert(0, 0) }
                    let row := add(table, mul(0x60, j))
                    for { let e := table } lt(e, row) { e := add(e, 0x60) } {
                        if eq(mload(e), worker) { halt := _DUPLICATE }
                    }
                    if halt { break }
                    mstore(row, worker)
                    mstore(add(row, 0x20), digest)

                    // The vote's EIP-712 hash, in scratch memory past the free pointer.
                    let p := mload(0x40)
                    mstore(p, voteTypeHash)
                    mstore(add(p, 0x20), taskId)
                    mstore(add(p, 0x40), digest)
                    mstore(add(p, 0x60), worker)
                    let structHash := keccak256(p, 0x80)
                    mstore(p, hex"1901")
                    mstore(add(p, 0x02), domain)
                    mstore(add(p, 0x22), structHash)
                    let hash := keccak256(p, 0x42)

                    // OpenZeppelin's ECDSA rules: 65 bytes r ‖ s ‖ v, s in the lower half order, v ∈ {27, 28}
                    // (the precompile returns nothing for any other v).
                    let sigRel := calldataload(add(v, 0xa0))
                    let sig := add(v, sigRel)
                    let sigLength := calldataload(sig)
                    if or(
                        or(gt(sigRel, calldatasize()), gt(sigLength, calldatasize())),
                        gt(add(add(sig, 0x20), sigLength), calldatasize())
                    ) { revert(0, 0) }
                    mstore(0x00, 0)
                    if eq(sigLength, 65) {
                        let sigS := calldataload(add(sig, 0x40))
                        if gt(sigS, 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0) {
                            halt := _MALLEABLE_VOTE
                            break
                        }
                        mstore(p, hash)
                        mstore(add(p, 0x20), byte(0, calldataload(add(sig, 0x60))))
                        mstore(add(p, 0x40), calldataload(add(sig, 0x20)))
                        mstore(add(p, 0x60), sigS)
                        pop(staticcall(gas(), 1, p, 0x80, 0x00, 0x20))
                    }
                    let signer := mload(0x00)
                    if or(iszero(signer), iszero(eq(signer, sessionKey))) {
                        halt := _INVALID_VOTE
                        break
                    }

                    // Boyer–Moore.
                    switch lead
                    case 0 {
                        candidate := digest
                        lead := 1
                    }
                    default { lead := add(lead, sub(shl(1, eq(digest, candidate)), 1)) }

                    let entry := entryOf(ledger, worker)
                    mstore(add(row, 0x40), entry)
                    // A worker voting with its own key needs no grant; sessionExpiry and grantSig are ignored then.
                    if iszero(eq(sessionKey, worker)) {
                        let expiresAt := calldataload(add(v, 0x60))
                        if shr(64, expiresAt) { revert(0, 0) }
                        if iszero(gt(expiresAt, timestamp())) {
                            halt := _EXPIRED
                            break
                        }
                        mstore(0x00, sessionKey)
                        mstore(0x20, expiresAt)
                        if iszero(eq(shr(128, keccak256(0x00, 0x40)), shr(128, mload(add(entry, 0x20))))) {
                            halt := _GRANT_NOT_CACHED
                            break
                        }
                    }
                }
            }
            if (halt == 0) return candidate;
            if (halt != _GRANT_NOT_CACHED) _rejectVote(halt, index, v);
            _verifyGrant(index, v, table + 0x60 * j, domain);
            ++j;
        }
    }

    /// @dev Raises the custom error of a vote that `_authenticateAndFindCandidate` stopped at.
    function _rejectVote(uint256 rejection, uint256 index, uint256 v) private pure {
        address worker;
        uint64 expiresAt;
        assembly ("memory-safe") {
            worker := calldataload(v)
            expiresAt := calldataload(add(v, 0x60))
        }
        if (rejection == _DUPLICATE) revert DuplicateWorker(index, worker);
        if (rejection == _MALLEABLE_VOTE) revert MalleableSignature(index, worker);
        if (rejection == _INVALID_VOTE) revert InvalidVoteSignature(index, worker);
        revert SessionExpired(index, worker, expiresAt);
    }

    /// @dev The `bytes` field whose offset (relative to the vote at `v`) is at `v + field`, checked to lie
    ///      within calldata like Solidity's decoder checks it.
    function _bytesAt(uint256 v, uint256 field) private pure returns (bytes calldata b) {
        assembly ("memory-safe") {
            let rel := calldataload(add(v, field))
            let p := add(v, rel)
            let len := calldataload(p)
            if or(or(gt(rel, calldatasize()), gt(len, calldatasize())), gt(add(add(p, 0x20), len), calldatasize())) {
                revert(0, 0)
            }
            b.offset := add(p, 0x20)
            b.length := len
        }
    }

    /// @dev A grant that is not cached (the caller checked its expiry): the key must not be revoked and
    ///      the worker's signature must verify (ECDSA, or ERC-1271 for a smart-account worker). Then it is
    ///      cached in the worker's ledger entry: one grant per worker at a time, until revocation.
    ///      `v` is the vote's calldata position, `row` its row in the vote table.
    function _verifyGrant(uint256 index, uint256 v, uint256 row, bytes32 domain) private {
        address worker;
        address sessionKey;
        uint64 expiresAt;
        uint256 entry;
        assembly ("memory-safe") {
            worker := calldataload(v)
            sessionKey := calldataload(add(v, 0x40))
            expiresAt := calldataload(add(v, 0x60))
            entry := mload(add(row, 0x40))
        }
        if (_revoked[worker][sessionKey]) revert SessionKeyRevoked(index, worker, sessionKey);
        bytes calldata grantSig = _bytesAt(v, 0x80);
        bytes32 hash = MessageHashUtils.toTypedDataHash(domain, _grantStructHash(worker, sessionKey, expiresAt));
        if (worker.code.length == 0) {
            (address signer, bool malleable) = _recover(hash, grantSig);
            if (malleable) revert MalleableSignature(index, worker);
            if (signer == address(0) || signer != worker) revert InvalidGrantSignature(index, worker);
        } else if (!SignatureChecker.isValidERC1271SignatureNowCalldata(worker, hash, grantSig)) {
            // Smart-account workers grant session keys through ERC-1271.
            revert InvalidGrantSignature(index, worker);
        }
        bytes16 tag = _sessionTag(sessionKey, expiresAt);
        assembly ("memory-safe") {
            let value := add(entry, 0x20)
            mstore(value, or(and(mload(value), 0xffffffffffffffffffffffffffffffff), tag))
            mstore(entry, or(mload(entry), _KEY_DIRTY))
        }
    }

    /// @dev Credits the winners and strikes the dissenters (in their ledger entries) and emits TaskSettled,
    ///      whose data is ABI-encoded in place: the four metrics words, the two array offsets, the winners
    ///      (length, addresses), then the dissenters (length, addresses), in vote order.
    function _creditAndEmit(Settlement calldata s, uint256 table, uint256 n, bytes32 digest, uint256 winners, uint256 each)
        private
    {
        bytes32 topic0 = TaskSettled.selector;
        bool overflow;
        assembly ("memory-safe") {
            let data := mload(0x40)
            let size := add(0x100, shl(5, n))
            mstore(data, digest)
            // valCorrect, valCount, valLoss: as in calldata, checked clean by `_metricsDigest`.
            calldatacopy(add(data, 0x20), add(s, 0x20), 0x60)
            mstore(add(data, 0x80), 0xc0)
            mstore(add(data, 0xa0), add(0xe0, shl(5, winners)))
            mstore(add(data, 0xc0), winners)
            let w := add(data, 0xe0) // next winner's word
            let d := add(w, shl(5, winners)) // dissenters' length, then their words
            mstore(d, sub(n, winners))
            d := add(d, 0x20)
            let owedMask := 0xffffffffffffffffffffffff
            let seen := shl(120, 1)
            for { let e := table let end := add(table, mul(0x60, n)) } lt(e, end) { e := add(e, 0x60) } {
                let worker := mload(e)
                let entry := mload(add(e, 0x40))
                let value := mload(add(entry, 0x20))
                switch eq(mload(add(e, 0x20)), digest)
                case 1 {
                    mstore(w, worker)
                    w := add(w, 0x20)
                    if each {
                        // owed += each, checked like uint96 arithmetic; seen = true.
                        let owed_ := add(and(value, owedMask), each)
                        overflow := or(overflow, gt(owed_, owedMask))
                        mstore(add(entry, 0x20), or(or(and(value, not(owedMask)), owed_), seen))
                        mstore(entry, or(mload(entry), _KEY_DIRTY))
                    }
                }
                default {
                    mstore(d, worker)
                    d := add(d, 0x20)
                    // strikes += 1, saturating at 2^24 − 1; seen = true.
                    if lt(and(shr(96, value), 0xffffff), 0xffffff) { value := add(value, shl(96, 1)) }
                    mstore(add(entry, 0x20), or(value, seen))
                    mstore(entry, or(mload(entry), _KEY_DIRTY))
                }
            }
            if iszero(overflow) { log2(data, size, topic0, calldataload(s)) }
        }
        if (overflow) _panicOverflow();
    }

    /// @dev Panic(0x11), what checked arithmetic raises on overflow.
    function _panicOverflow() private pure {
        assembly ("memory-safe") {
            mstore(0x00, shl(224, 0x4e487b71))
            mstore(0x04, 0x11)
            revert(0x00, 0x24)
        }
    }

    // ---------------------------------------------------------------- the batch's ledger of accounts
    //
    // `settle` credits, strikes and caches grants in memory and writes each touched account slot once
    // per batch (a batch usually involves few distinct workers, each in many of its tasks). The ledger is
    // an open-addressing hash table in memory, indexed by the worker address's low bits (addresses are
    // hashes; a worker who grinds colliding addresses only makes its coordinator's batches a little
    // dearer). Layout at `ledger`: [mask, count], then (mask + 1) entries of two words: the key
    // (worker | 1 << 160, | 1 << 161 once changed; 0 = free) and the account slot's packed value
    // (Account: owed bits 0-95, strikes 96-119, seen bit 120, sessionTag bits 128-255); then the
    // addresses of the `count` used entries, so writing back and emptying skip the free ones.
    // Before each settlement `_ledgerReserve` makes room for all its voters (writing the ledger back and
    // emptying it if needed), so entries stay put while a settlement uses them, and any batch fits.

    /// @dev A ledger with room for `workers` entries (a power of two at least twice that, within bounds).
    function _ledgerNew(uint256 workers) private pure returns (uint256 ledger) {
        uint256 capacity = _LEDGER_MIN;
        while (capacity < 2 * workers && capacity < _LEDGER_MAX) capacity <<= 1;
        assembly ("memory-safe") {
            ledger := mload(0x40)
            let size := add(0x40, add(shl(6, capacity), shl(4, capacity)))
            mstore(0x40, add(ledger, size))
            // Zeroed: memory past the free pointer may hold scratch data.
            calldatacopy(ledger, calldatasize(), size)
            mstore(ledger, sub(capacity, 1))
        }
    }

    /// @dev Makes room for `voters` more entries while keeping the table at most half full: writes the
    ///      ledger back and empties it when needed (or starts a bigger one).
    function _ledgerReserve(uint256 ledger, uint256 voters) private returns (uint256) {
        uint256 capacity;
        uint256 count;
        assembly ("memory-safe") {
            capacity := add(mload(ledger), 1)
            count := mload(add(ledger, 0x20))
        }
        if (2 * (count + voters) <= capacity) return ledger;
        _ledgerFlush(ledger);
        if (2 * voters > capacity) return _ledgerNew(voters);
        assembly ("memory-safe") {
            let used := add(add(ledger, 0x40), shl(6, capacity))
            for { let end := add(used, shl(5, count)) } lt(used, end) { used := add(used, 0x20) } {
                mstore(mload(used), 0)
            }
            mstore(add(ledger, 0x20), 0)
        }
        return ledger;
    }

    /// @dev Writes every changed account back to its storage slot.
    function _ledgerFlush(uint256 ledger) private {
        assembly ("memory-safe") {
            let used := add(add(ledger, 0x40), shl(6, add(mload(ledger), 1)))
            let end := add(used, shl(5, mload(add(ledger, 0x20))))
            mstore(0x20, _accounts.slot)
            for {} lt(used, end) { used := add(used, 0x20) } {
                let entry := mload(used)
                let key := mload(entry)
                if and(key, _KEY_DIRTY) {
                    mstore(0x00, and(key, 0xffffffffffffffffffffffffffffffffffffffff))
                    sstore(keccak256(0x00, 0x40), mload(add(entry, 0x20)))
                }
            }
        }
    }

    /// @dev OpenZeppelin's ECDSA.tryRecoverCalldata rules in fewer steps: 65 bytes r ‖ s ‖ v, s in the
    ///      lower half order (else `malleable`), v ∈ {27, 28} (the precompile rejects others). `signer` is
    ///      0 for any invalid signature.
    function _recover(bytes32 hash, bytes calldata sig) private view returns (address signer, bool malleable) {
        assembly ("memory-safe") {
            if eq(sig.length, 65) {
                let s := calldataload(add(sig.offset, 0x20))
                malleable := gt(s, 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0)
                if iszero(malleable) {
                    let p := mload(0x40)
                    mstore(p, hash)
                    mstore(add(p, 0x20), byte(0, calldataload(add(sig.offset, 0x40))))
                    mstore(add(p, 0x40), calldataload(sig.offset))
                    mstore(add(p, 0x60), s)
                    mstore(0x00, 0)
                    pop(staticcall(gas(), 1, p, 0x80, 0x00, 0x20))
                    signer := mload(0x00)
                }
            }
        }
    }

    /// @dev keccak256(abi.encode(taskId, valCorrect, valCount, valLoss, weightsHash, traceRoot)): the six
    ///      words at the head of the settlement's calldata are that encoding once checked to be clean
    ///      (Solidity's decoder reverts on the same dirty bits).
    function _metricsDigest(Settlement calldata s) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let valLoss := calldataload(add(s, 0x60))
            if or(
                or(shr(32, calldataload(add(s, 0x20))), shr(32, calldataload(add(s, 0x40)))),
                iszero(eq(signextend(7, valLoss), valLoss))
            ) { revert(0, 0) }
            let p := mload(0x40)
            calldatacopy(p, s, 0xc0)
            h := keccak256(p, 0xc0)
        }
    }

    function _sessionTag(address sessionKey, uint64 expiresAt) private pure returns (bytes16 tag) {
        bytes32 h;
        assembly ("memory-safe") {
            mstore(0x00, sessionKey)
            mstore(0x20, expiresAt)
            h := keccak256(0x00, 0x40)
        }
        return bytes16(h);
    }

    function _grantStructHash(address worker, address sessionKey, uint64 expiresAt) private pure returns (bytes32) {
        return _hash4(
            SESSION_GRANT_TYPEHASH,
            bytes32(uint256(uint160(worker))),
            bytes32(uint256(uint160(sessionKey))),
            bytes32(uint256(expiresAt))
        );
    }

    /// @dev keccak256 of four words, in scratch memory past the free pointer (no allocation per vote).
    function _hash4(bytes32 a, bytes32 b, bytes32 c, bytes32 d) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, a)
            mstore(add(p, 0x20), b)
            mstore(add(p, 0x40), c)
            mstore(add(p, 0x60), d)
            h := keccak256(p, 0x80)
        }
    }

    function _setRewardPerTask(uint256 rewardPerTask_) private {
        if (rewardPerTask_ > type(uint96).max) revert RewardTooLarge(rewardPerTask_);
        _config.rewardPerTask = uint96(rewardPerTask_);
        emit RewardPerTaskSet(rewardPerTask_);
    }

    function _setMinQuorum(uint256 minQuorum_) private {
        if (minQuorum_ == 0 || minQuorum_ > MAX_VOTES) revert InvalidQuorum(minQuorum_);
        _config.minQuorum = uint32(minQuorum_);
        emit MinQuorumSet(minQuorum_);
    }
}
