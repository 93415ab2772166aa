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
        uint256 remaining = config.pool;
        uint256 ledger = _ledgerNew(batch.length);
        bytes32 domain = _domainSeparatorV4();
        for (uint256 i; i < batch.length; ++i) {
            remaining = _settleOne(i, batch[i], config.rewardPerTask, config.minQuorum, remaining, ledger, domain);
        }
        _ledgerFlush(ledger);
        if (remaining != config.pool) _config.pool = uint128(remaining);
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

    /// @dev Settles one task or reverts; returns the pool left after crediting its winners.
    ///      The votes are read from calldata once, by `_authenticateAndFindCandidate`, into a table in
    ///      memory (worker, digest per vote) that the later passes read.
    function _settleOne(
        uint256 index,
        Settlement calldata s,
        uint256 reward,
        uint256 quorum,
        uint256 remaining,
        uint256 ledger,
        bytes32 domain
    ) private returns (uint256) {
        bytes32 taskId = s.taskId;
        if (_settled[taskId] != 0) revert AlreadySettled(index, taskId);
        Vote[] calldata votes = s.votes;
        uint256 n = votes.length;
        if (n < quorum) revert TooFewVotes(index, n, quorum);
        if (n > MAX_VOTES) revert TooManyVotes(index, n, MAX_VOTES);

        uint256 table;
        assembly ("memory-safe") {
            table := mload(0x40)
            mstore(0x40, add(table, shl(6, n)))
        }
        bytes32 majority = _authenticateAndFindCandidate(index, taskId, votes, table, ledger, domain);
        uint256 winners;
        assembly ("memory-safe") {
            for { let e := table let end := add(table, shl(6, n)) } lt(e, end) { e := add(e, 0x40) } {
                winners := add(winners, eq(mload(add(e, 0x20)), majority))
            }
        }
        if (2 * winners <= n) revert NoMajority(index, taskId);
        if (winners < quorum) revert QuorumNotReached(index, winners, quorum);
        bytes32 digest = _metricsDigest(s);
        if (digest != majority) revert MetricsMismatch(index, majority, digest);

        _settled[taskId] = digest;
        // When the pool runs dry, the task still settles and its winners share what is left (possibly 0).
        uint256 each = (reward < remaining ? reward : remaining) / winners;
        _creditAndEmit(s, table, n, digest, winners, each, ledger);
        assembly ("memory-safe") {
            // The vote table is not needed any more: give its memory back.
            mstore(0x40, table)
        }
        return remaining - each * winners;
    }

    /// @dev Authenticates every vote, rejects duplicate workers and returns the Boyer–Moore majority
    ///      candidate (the only digest that can hold more than half of the votes). Fills `table`.
    function _authenticateAndFindCandidate(
        uint256 index,
        bytes32 taskId,
        Vote[] calldata votes,
        uint256 table,
        uint256 ledger,
        bytes32 domain
    ) private returns (bytes32 candidate) {
        uint256 lead;
        uint256 n = votes.length;
        for (uint256 j; j < n; ++j) {
            uint256 v = _voteAt(votes, j);
            address worker;
            bytes32 digest;
            address sessionKey;
            bool duplicate;
            assembly ("memory-safe") {
                worker := calldataload(v)
                digest := calldataload(add(v, 0x20))
                sessionKey := calldataload(add(v, 0x40))
                // Like Solidity's ABI decoder: an address with dirty upper bits is malformed calldata.
                if or(shr(160, worker), shr(160, sessionKey)) { revert(0, 0) }
                let row := add(table, shl(6, j))
                for { let e := table } lt(e, row) { e := add(e, 0x40) } {
                    if eq(mload(e), worker) {
                        duplicate := 1
                        break
                    }
                }
                mstore(row, worker)
                mstore(add(row, 0x20), digest)
            }
            if (duplicate) revert DuplicateWorker(index, worker);

            (address signer, bool malleable) =
                _recover(_voteHash(domain, taskId, digest, worker), _bytesAt(v, 0xa0));
            if (malleable) revert MalleableSignature(index, worker);
            if (signer == address(0) || signer != sessionKey) revert InvalidVoteSignature(index, worker);
            // A worker voting with its own key needs no grant; sessionExpiry and grantSig are ignored then.
            if (sessionKey != worker) {
                uint64 expiresAt;
                assembly ("memory-safe") {
                    expiresAt := calldataload(add(v, 0x60))
                    if shr(64, expiresAt) { revert(0, 0) }
                }
                _checkGrant(index, worker, sessionKey, expiresAt, _bytesAt(v, 0x80), ledger, domain);
            }

            if (lead == 0) {
                candidate = digest;
                lead = 1;
            } else if (digest == candidate) {
                ++lead;
            } else {
                --lead;
            }
        }
    }

    /// @dev The calldata position of `votes[j]` (j < votes.length), checked like Solidity's decoder checks it.
    function _voteAt(Vote[] calldata votes, uint256 j) private pure returns (uint256 v) {
        assembly ("memory-safe") {
            let rel := calldataload(add(votes.offset, shl(5, j)))
            v := add(votes.offset, rel)
            if or(gt(rel, calldatasize()), gt(add(v, 0xc0), calldatasize())) { revert(0, 0) }
        }
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

    /// @dev EIP-712 hash of ResultVote(taskId, digest, worker), in scratch memory past the free pointer.
    function _voteHash(bytes32 domain, bytes32 taskId, bytes32 digest, address worker)
        private
        pure
        returns (bytes32 h)
    {
        bytes32 typeHash = RESULT_VOTE_TYPEHASH;
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, typeHash)
            mstore(add(p, 0x20), taskId)
            mstore(add(p, 0x40), digest)
            mstore(add(p, 0x60), worker)
            let structHash := keccak256(p, 0x80)
            mstore(p, hex"1901")
            mstore(add(p, 0x02), domain)
            mstore(add(p, 0x22), structHash)
            h := keccak256(p, 0x42)
        }
    }

    /// @dev A grant is valid while block.timestamp < expiresAt and the worker has not revoked the key.
    ///      Its signature is verified once and cached (one grant per worker at a time) until revocation.
    function _checkGrant(
        uint256 index,
        address worker,
        address sessionKey,
        uint64 expiresAt,
        bytes calldata grantSig,
        uint256 ledger,
        bytes32 domain
    ) private {
        if (expiresAt <= block.timestamp) revert SessionExpired(index, worker, expiresAt);
        bytes16 tag = _sessionTag(sessionKey, expiresAt);
        uint256 entry = _ledgerEntry(ledger, worker);
        if (_entrySessionTag(entry) == tag) return;
        if (_revoked[worker][sessionKey]) revert SessionKeyRevoked(index, worker, sessionKey);

        bytes32 hash = MessageHashUtils.toTypedDataHash(domain, _grantStructHash(worker, sessionKey, expiresAt));
        if (worker.code.length == 0) {
            (address signer, bool malleable) = _recover(hash, grantSig);
            if (malleable) revert MalleableSignature(index, worker);
            if (signer == address(0) || signer != worker) revert InvalidGrantSignature(index, worker);
        } else if (!SignatureChecker.isValidERC1271SignatureNowCalldata(worker, hash, grantSig)) {
            // Smart-account workers grant session keys through ERC-1271.
            revert InvalidGrantSignature(index, worker);
        }
        _entrySetSessionTag(entry, tag);
    }

    /// @dev Credits the winners and strikes the dissenters (in the batch's ledger) and emits TaskSettled,
    ///      whose data is ABI-encoded in place: the four metrics words, the two array offsets, the winners
    ///      (length, addresses), then the dissenters (length, addresses), in vote order.
    function _creditAndEmit(
        Settlement calldata s,
        uint256 table,
        uint256 n,
        bytes32 digest,
        uint256 winners,
        uint256 each,
        uint256 ledger
    ) private {
        uint256 data;
        uint256 size = 0x100 + 0x20 * n;
        uint32 valCorrect = s.valCorrect;
        uint32 valCount = s.valCount;
        int64 valLoss = s.valLoss;
        assembly ("memory-safe") {
            data := mload(0x40)
            mstore(0x40, add(data, size))
            mstore(data, digest)
            mstore(add(data, 0x20), valCorrect)
            mstore(add(data, 0x40), valCount)
            mstore(add(data, 0x60), signextend(7, valLoss))
            mstore(add(data, 0x80), 0xc0)
            mstore(add(data, 0xa0), add(0xe0, shl(5, winners)))
            mstore(add(data, 0xc0), winners)
            mstore(add(data, add(0xe0, shl(5, winners))), sub(n, winners))
        }
        uint256 w = data + 0xe0; // next winner's word
        uint256 d = w + 0x20 * winners + 0x20; // next dissenter's word
        uint256 end = table + 0x40 * n;
        for (uint256 e = table; e < end; e += 0x40) {
            address worker;
            bool wins;
            assembly ("memory-safe") {
                worker := mload(e)
                wins := eq(mload(add(e, 0x20)), digest)
            }
            if (wins) {
                assembly ("memory-safe") {
                    mstore(w, worker)
                }
                w += 0x20;
                if (each != 0) _entryCredit(_ledgerEntry(ledger, worker), each);
            } else {
                assembly ("memory-safe") {
                    mstore(d, worker)
                }
                d += 0x20;
                _entryStrike(_ledgerEntry(ledger, worker));
            }
        }
        bytes32 topic0 = TaskSettled.selector;
        bytes32 taskId = s.taskId;
        assembly ("memory-safe") {
            log2(data, size, topic0, taskId)
            // The log data is not needed any more: give its memory back.
            mstore(0x40, data)
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
    // (Account: owed bits 0-95, strikes 96-119, seen bit 120, sessionTag bits 128-255).
    // When it is half full it is flushed (written back and emptied), so any batch fits.

    uint256 private constant _KEY_USED = 1 << 160;
    uint256 private constant _KEY_DIRTY = 1 << 161;
    uint256 private constant _LEDGER_MIN = 16;
    uint256 private constant _LEDGER_MAX = 512;

    function _ledgerNew(uint256 batchLength) private pure returns (uint256 ledger) {
        uint256 capacity = _LEDGER_MIN;
        while (capacity < 4 * batchLength && capacity < _LEDGER_MAX) capacity <<= 1;
        assembly ("memory-safe") {
            ledger := mload(0x40)
            let size := add(0x40, shl(6, capacity))
            mstore(0x40, add(ledger, size))
            // Zeroed: memory past the free pointer may hold scratch data.
            calldatacopy(ledger, calldatasize(), size)
            mstore(ledger, sub(capacity, 1))
        }
    }

    /// @dev The memory address of `worker`'s entry (key word; the value is the next word), loading its
    ///      account slot on first use. The address is valid until the next call (which may flush).
    function _ledgerEntry(uint256 ledger, address worker) private returns (uint256 entry) {
        entry = _ledgerProbe(ledger, worker);
        uint256 key;
        assembly ("memory-safe") {
            key := mload(entry)
        }
        if (key != 0) return entry;
        uint256 mask;
        uint256 count;
        assembly ("memory-safe") {
            mask := mload(ledger)
            count := add(mload(add(ledger, 0x20)), 1)
        }
        if (2 * count > mask + 1) {
            _ledgerFlush(ledger);
            assembly ("memory-safe") {
                // Empty the table (count and entries).
                calldatacopy(add(ledger, 0x20), calldatasize(), add(0x20, shl(6, add(mask, 1))))
            }
            entry = _ledgerProbe(ledger, worker);
            count = 1;
        }
        key = uint256(uint160(worker)) | _KEY_USED;
        assembly ("memory-safe") {
            mstore(add(ledger, 0x20), count)
            mstore(entry, key)
            mstore(0x00, worker)
            mstore(0x20, _accounts.slot)
            mstore(add(entry, 0x20), sload(keccak256(0x00, 0x40)))
        }
    }

    /// @dev Linear probing from the worker's home entry: its entry, or the free one where it would go.
    function _ledgerProbe(uint256 ledger, address worker) private pure returns (uint256 entry) {
        assembly ("memory-safe") {
            let mask := mload(ledger)
            let entries := add(ledger, 0x40)
            let i := and(worker, mask)
            for {} 1 {} {
                entry := add(entries, shl(6, i))
                let key := mload(entry)
                if iszero(key) { break }
                if eq(and(key, 0xffffffffffffffffffffffffffffffffffffffff), worker) { break }
                i := and(add(i, 1), mask)
            }
        }
    }

    /// @dev Writes every changed account back to its storage slot.
    function _ledgerFlush(uint256 ledger) private {
        assembly ("memory-safe") {
            let entry := add(ledger, 0x40)
            let end := add(entry, shl(6, add(mload(ledger), 1)))
            mstore(0x20, _accounts.slot)
            for {} lt(entry, end) { entry := add(entry, 0x40) } {
                let key := mload(entry)
                if and(key, _KEY_DIRTY) {
                    mstore(0x00, and(key, 0xffffffffffffffffffffffffffffffffffffffff))
                    sstore(keccak256(0x00, 0x40), mload(add(entry, 0x20)))
                }
            }
        }
    }

    function _entrySessionTag(uint256 entry) private pure returns (bytes16 tag) {
        assembly ("memory-safe") {
            tag := shl(128, shr(128, mload(add(entry, 0x20))))
        }
    }

    function _entrySetSessionTag(uint256 entry, bytes16 tag) private pure {
        assembly ("memory-safe") {
            let value := add(entry, 0x20)
            mstore(value, or(and(mload(value), 0xffffffffffffffffffffffffffffffff), tag))
            mstore(entry, or(mload(entry), _KEY_DIRTY))
        }
    }

    /// @dev owed += amount (reverting with Panic(0x11) past uint96, like checked arithmetic) and seen = true.
    function _entryCredit(uint256 entry, uint256 amount) private pure {
        uint256 value;
        assembly ("memory-safe") {
            value := mload(add(entry, 0x20))
        }
        uint96 owed_ = uint96(value) + uint96(amount);
        assembly ("memory-safe") {
            value := or(or(and(value, not(0xffffffffffffffffffffffff)), owed_), shl(120, 1))
            mstore(add(entry, 0x20), value)
            mstore(entry, or(mload(entry), _KEY_DIRTY))
        }
    }

    /// @dev strikes += 1, saturating at 2^24 − 1, and seen = true.
    function _entryStrike(uint256 entry) private pure {
        assembly ("memory-safe") {
            let slot := add(entry, 0x20)
            let value := mload(slot)
            let strikes_ := and(shr(96, value), 0xffffff)
            if lt(strikes_, 0xffffff) { value := add(value, shl(96, 1)) }
            mstore(slot, or(value, shl(120, 1)))
            mstore(entry, or(mload(entry), _KEY_DIRTY))
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

    function _metricsDigest(Settlement calldata s) private pure returns (bytes32 h) {
        bytes32 taskId = s.taskId;
        uint32 valCorrect = s.valCorrect;
        uint32 valCount = s.valCount;
        int64 valLoss = s.valLoss;
        bytes32 weightsHash = s.weightsHash;
        bytes32 traceRoot = s.traceRoot;
        // abi.encode of six static words, hashed in scratch memory past the free pointer (no allocation).
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, taskId)
            mstore(add(p, 0x20), valCorrect)
            mstore(add(p, 0x40), valCount)
            mstore(add(p, 0x60), signextend(7, valLoss))
            mstore(add(p, 0x80), weightsHash)
            mstore(add(p, 0xa0), traceRoot)
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
