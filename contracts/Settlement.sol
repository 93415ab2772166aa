// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/// @title Cambrian settlement v2: majority-voted (or refereed) microtask results, capped and challengeable
///        rewards by pull payment.
/// @notice Plain Solidity, no inline assembly. See docs/CONTRACT.md for the packed `tasks` format, the rules
///         and the trust model (what a stolen coordinator key can and cannot do).
contract Settlement is AccessControlDefaultAdminRules, EIP712, ReentrancyGuardTransient {
    /// @notice Version of the settle ABI and rules documented in docs/CONTRACT.md (3: task records repacked for
    ///         reading cost, voidBatch credits one total per worker; 4: worker bonds, slashed by a referee verdict;
    ///         5: sponsors' searches, each with its own pool and terms, a batch settling the tasks of one search).
    uint256 public constant VERSION = 5;
    bytes32 public constant COORDINATOR_ROLE = keccak256("COORDINATOR_ROLE");
    bytes32 public constant REFEREE_ROLE = keccak256("REFEREE_ROLE");
    bytes32 public constant WATCHER_ROLE = keccak256("WATCHER_ROLE");
    bytes32 public constant SESSION_GRANT_TYPEHASH =
        keccak256("SessionGrant(address worker,address sessionKey,uint64 expiresAt)");
    bytes32 public constant RESULT_VOTE_TYPEHASH = keccak256("ResultVote(bytes32 taskId,bytes32 digest,address worker)");
    bytes32 public constant REFEREE_VERDICT_TYPEHASH = keccak256("RefereeVerdict(bytes32 taskId,bytes32 digest)");
    /// @notice Upper bound on votes per task and on the workers table of a batch (votes name workers by a byte).
    uint256 public constant MAX_VOTES = 64;
    uint256 public constant MAX_WORKERS = 256;
    /// @notice Gas given to a smart-account worker's `isValidSignature`, so no worker can burn a batch.
    uint256 public constant ERC1271_GAS = 50_000;
    /// @notice Delay before a new admin (DEFAULT_ADMIN_ROLE holder) takes over (two-step handover).
    uint48 public constant ADMIN_DELAY = 2 days;
    /// @notice Length of an epoch: rate changes apply from the next epoch, payouts are capped per epoch, and
    ///         credits of epoch e become claimable in epoch e + 2 (the challenge window is one to two epochs).
    uint256 public immutable EPOCH_SECONDS;
    /// @notice How long a closed search keeps settling (tasks leased before it closed are still paid) before its
    ///         sponsor can withdraw what is left.
    uint256 public immutable SEARCH_GRACE_SECONDS;

    // Why a vote or a grant was skipped (VoteSkipped / GrantSkipped).
    uint8 public constant SKIP_BAD_SIGNATURE = 1;
    uint8 public constant SKIP_EXPIRED = 2;
    uint8 public constant SKIP_REVOKED = 3;
    uint8 public constant SKIP_MALLEABLE = 4;

    // Fixed part of a task record in `tasks` (see docs/CONTRACT.md): the head (seq 8, valCorrect 4, valCount 4,
    // valLoss 8, flags 1, other groups 1, votes for the digest 1), read as one word, then taskId, weightsHash and
    // traceRoot (32 each). A vote is a signature (r 32, s 32, v 1) and the voter's index in the workers table.
    uint256 private constant _HEAD = 27;
    uint256 private constant _TASK_FIXED = _HEAD + 96;
    uint256 private constant _SIG = 65;
    uint256 private constant _VOTE = _SIG + 1;
    uint256 private constant _HAS_VERDICT = 1;
    uint256 private constant _GRANT_LOADED = 1 << 255;
    bytes32 private constant _VOIDED = bytes32(uint256(1));

    /// @notice A session grant to verify and cache before the batch's votes are checked.
    struct Grant {
        address worker;
        address sessionKey;
        uint64 expiresAt;
        bytes signature;
    }

    /// @notice What a settled batch credited one worker in all (`voidBatch` takes them in the order of the batch's
    ///         workers table, leaving out workers it credited nothing).
    struct Credit {
        address worker;
        uint96 amount;
    }

    /// @dev Reward and quorum in force, and the change scheduled for a later epoch (0 = none).
    struct Terms {
        uint96 reward;
        uint16 quorum;
        uint96 nextReward;
        uint16 nextQuorum;
        uint32 nextFrom;
    }

    /// @dev The pool not yet credited to anyone and what the coordinator paid out in `epoch`.
    struct Ledger {
        uint128 pool;
        uint96 epochPaid;
        uint32 epoch;
    }

    /// @dev Per worker: matured credit, the credit of epoch `epoch` (pending), and strikes. Credit of epoch
    ///      `epoch - 1` waits in `_previous` (touched once per epoch and worker).
    struct Account {
        uint96 owed;
        uint96 current;
        uint32 epoch;
        uint32 strikes;
    }

    /// @dev A worker's bond: what counts as bonded, what waits to be withdrawn (still slashable) and from when.
    struct Bond {
        uint96 bonded;
        uint96 unbonding;
        uint64 availableAt;
    }

    /// @dev The worker's last verified session grant; revoking that key deletes it.
    struct CachedGrant {
        address sessionKey;
        uint64 expiresAt;
    }

    /// @dev A sponsor's search: terms fixed when it opens, when it stops settling (0 while open) and its pool.
    struct Search {
        address sponsor;
        uint96 reward;
        uint96 cap;
        uint64 settleUntil;
        Ledger ledger;
    }

    /// @dev What `settle` carries from one task of a batch to the next (in memory), so that each storage slot is
    ///      read and written once per batch rather than once per task or vote.
    struct Batch {
        uint256 reward;
        uint256 quorum;
        uint256 pool;
        uint256 epochPaid;
        uint256 cap;
        uint32 epoch;
        /// @dev The EIP-712 domain separator, computed once per batch for the votes' hashes.
        bytes32 domain;
        /// @dev Per index of the workers table: what the batch credits the worker (stored once, at the end).
        uint256[] credits;
        /// @dev Per index of the workers table: the worker's cached grant once read (`_GRANT_LOADED` set).
        uint256[] grants;
        /// @dev The settled bitmap's word the batch is writing (`bitsWord`), its bits so far, and whether
        ///      `bits` holds anything to store.
        uint256 bitsWord;
        uint256 bits;
        bool bitsLoaded;
    }

    Terms private _terms;
    Ledger private _ledger;
    uint96 private _epochCap;
    uint64 private _batchCount;
    mapping(address worker => Account) private _accounts;
    mapping(address worker => uint256) private _previous;
    mapping(address worker => CachedGrant) private _grants;
    mapping(address worker => mapping(address sessionKey => bool)) private _revoked;
    /// @dev Settled task sequence numbers, 256 to a slot.
    mapping(uint256 word => uint256 bits) private _settled;
    /// @dev Per batch: keccak256(abi.encode(creditsChain, epoch, searchId)), or _VOIDED.
    mapping(uint256 batchId => bytes32) private _batches;
    mapping(address sponsor => uint256) private _funded;
    mapping(address worker => Bond) private _bonds;
    /// @dev keccak256(abi.encode(taskId, worker)) of each vote a bond was slashed for: one slash per wrong vote.
    mapping(bytes32 voteKey => bool) private _slashed;
    /// @dev Σ (bonded + unbonding) over workers: held by the contract apart from the pool and credits.
    uint256 private _bondsHeld;
    mapping(bytes32 searchId => Search) private _searches;

    event BatchSettled(
        uint256 indexed batchId, bytes32 indexed searchId, uint32 epoch, uint256 tasks, uint256 reward, uint256 paid
    );
    event VoteSkipped(uint64 indexed seq, address indexed worker, uint8 reason);
    event GrantSkipped(address indexed worker, address indexed sessionKey, uint8 reason);
    event BatchVoided(uint256 indexed batchId, uint256 amount);
    event Funded(address indexed sponsor, uint256 amount, uint256 pool);
    event Withdrawn(address indexed sponsor, uint256 amount, uint256 pool);
    event Claimed(address indexed worker, address to, uint256 amount);
    event SessionRevoked(address indexed worker, address indexed sessionKey);
    event TermsScheduled(uint256 rewardPerTask, uint256 minQuorum, uint32 fromEpoch);
    event EpochCapSet(uint256 epochCap);
    event BondDeposited(address indexed worker, uint256 amount, uint256 bonded);
    event UnbondRequested(address indexed worker, uint256 amount, uint64 availableAt);
    event BondWithdrawn(address indexed worker, uint256 amount);
    event SearchOpened(bytes32 indexed searchId, address indexed sponsor, uint256 rewardPerTask, uint256 epochCap);
    event SearchFunded(bytes32 indexed searchId, address indexed from, uint256 amount, uint256 pool);
    event SearchClosed(bytes32 indexed searchId, uint64 settleUntil);
    event SearchReopened(bytes32 indexed searchId);
    event SearchWithdrawn(bytes32 indexed searchId, uint256 amount, uint256 pool);
    event Slashed(address indexed worker, bytes32 indexed taskId, bytes32 digest, uint256 amount, address by);

    // Rejections inside a batch carry `index`, the position of the offending task in the batch.
    error MalformedTask(uint256 index);
    error AlreadySettled(uint256 index, uint64 seq);
    error TooManyVotes(uint256 index, uint256 votes);
    error UnknownWorker(uint256 index, uint256 workerIndex);
    error DuplicateWorker(uint256 index, address worker);
    error SameDigestGroup(uint256 index);
    error InvalidVerdict(uint256 index, address signer);
    error NoHonestVote(uint256 index, uint64 seq);
    error NoMajority(uint256 index, uint64 seq);
    error QuorumNotReached(uint256 index, uint256 agreeing, uint256 minQuorum);
    error PayoutCapReached(uint256 index, uint256 epochPaid, uint256 epochCap);
    error WorkersNotAscending(uint256 workerIndex);
    error TooManyWorkers(uint256 workers);
    error NothingToClaim(address worker);
    error TransferFailed(address to, uint256 amount);
    error ZeroFunding();
    error PoolOverflow();
    error WithdrawTooLarge(uint256 amount, uint256 withdrawable);
    error InvalidQuorum(uint256 minQuorum);
    error RewardTooLarge(uint256 rewardPerTask);
    error InvalidEpochLength(uint256 epochSeconds);
    error NotWatcher(address caller);
    error UnknownCommitment(uint256 batchId);
    error ChallengeWindowClosed(uint256 batchId, uint32 epoch);
    error ZeroBond();
    error BondOverflow();
    error UnbondTooLarge(uint256 amount, uint256 bonded);
    error BondLocked(uint64 availableAt);
    error NothingToWithdraw(address worker);
    error VerdictAgrees(bytes32 taskId);
    error InvalidVote(address worker, address signer);
    error AlreadySlashed(bytes32 taskId, address worker);
    error NothingToSlash(address worker);
    error UnknownSearch(bytes32 searchId);
    error SearchExists(bytes32 searchId);
    error NotSponsor(bytes32 searchId, address caller);
    error SearchNotOpen(bytes32 searchId, uint64 settleUntil);
    error SearchStillSettling(bytes32 searchId, uint64 settleUntil);

    constructor(
        address admin,
        address coordinator,
        address referee,
        uint256 rewardPerTask_,
        uint256 minQuorum_,
        uint256 epochCap_,
        uint256 epochSeconds,
        uint256 searchGraceSeconds
    ) AccessControlDefaultAdminRules(ADMIN_DELAY, admin) EIP712("Cambrian", "1") {
        if (epochSeconds == 0 || epochSeconds > 365 days) revert InvalidEpochLength(epochSeconds);
        if (searchGraceSeconds > 365 days) revert InvalidEpochLength(searchGraceSeconds);
        EPOCH_SECONDS = epochSeconds;
        SEARCH_GRACE_SECONDS = searchGraceSeconds;
        _grantRole(COORDINATOR_ROLE, coordinator);
        if (referee != address(0)) _grantRole(REFEREE_ROLE, referee);
        _checkTerms(rewardPerTask_, minQuorum_);
        _terms = Terms(uint96(rewardPerTask_), uint16(minQuorum_), 0, 0, 0);
        _setEpochCap(epochCap_);
    }

    // ---------------------------------------------------------------- sponsors and admin

    /// @notice Adds the sent value to the reward pool; the sender may withdraw it while it is not credited.
    function fund() external payable {
        if (msg.value == 0) revert ZeroFunding();
        uint256 balance = uint256(_ledger.pool) + msg.value;
        if (balance > type(uint96).max) revert PoolOverflow();
        _ledger.pool = uint128(balance);
        _funded[msg.sender] += msg.value;
        emit Funded(msg.sender, msg.value, balance);
    }

    /// @notice Takes back funding the sender put in, as far as the pool (what nobody is owed) allows.
    function withdraw(uint256 amount) external nonReentrant {
        uint256 pool_ = _ledger.pool;
        uint256 mine = _funded[msg.sender];
        uint256 available = mine < pool_ ? mine : pool_;
        if (amount == 0 || amount > available) revert WithdrawTooLarge(amount, available);
        _funded[msg.sender] = mine - amount;
        _ledger.pool = uint128(pool_ - amount);
        emit Withdrawn(msg.sender, amount, pool_ - amount);
        (bool ok,) = payable(msg.sender).call{value: amount}("");
        if (!ok) revert TransferFailed(msg.sender, amount);
    }

    /// @notice Schedules a new reward per task; batches of this epoch keep the current one.
    function setRewardPerTask(uint256 rewardPerTask_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        Terms memory t = _termsNow();
        _schedule(t, rewardPerTask_, t.nextFrom != 0 ? t.nextQuorum : t.quorum);
    }

    /// @notice Schedules a new minimum quorum (at least 2); batches of this epoch keep the current one.
    function setMinQuorum(uint256 minQuorum_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        Terms memory t = _termsNow();
        _schedule(t, t.nextFrom != 0 ? t.nextReward : t.reward, minQuorum_);
    }

    /// @notice The most the coordinator may credit per epoch (bounds the loss if its key is stolen).
    function setEpochCap(uint256 epochCap_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setEpochCap(epochCap_);
    }

    /// @notice Voids a batch proven fraudulent while its credits are still pending: they go back to the pool.
    ///         Its tasks stay settled (their sequence numbers are spent) and strikes stay.
    function voidBatch(uint256 batchId, bytes32 searchId, uint32 epoch, Credit[] calldata credits) external {
        if (!hasRole(WATCHER_ROLE, msg.sender) && msg.sender != defaultAdmin()) revert NotWatcher(msg.sender);
        bytes32 chain;
        for (uint256 i; i < credits.length; ++i) {
            chain = keccak256(abi.encode(chain, credits[i].worker, credits[i].amount));
        }
        bytes32 stored = _batches[batchId];
        if (stored == _VOIDED || stored != keccak256(abi.encode(chain, epoch, searchId))) {
            revert UnknownCommitment(batchId);
        }
        if (_epochNow() >= uint256(epoch) + 2) revert ChallengeWindowClosed(batchId, epoch);
        _batches[batchId] = _VOIDED;
        uint256 total;
        for (uint256 i; i < credits.length; ++i) {
            _uncredit(credits[i].worker, credits[i].amount, epoch);
            total += credits[i].amount;
        }
        if (searchId == bytes32(0)) _ledger.pool += uint128(total);
        else _searches[searchId].ledger.pool += uint128(total);
        emit BatchVoided(batchId, total);
    }

    // ---------------------------------------------------------------- searches

    /// @notice Opens a search paid from its own pool, the caller its sponsor: `rewardPerTask` per settled task
    ///         (fixed for the search's life), at most `epochCap` credited per epoch (what a stolen coordinator key
    ///         could take from it before a watcher voids the batch). The sent value funds its pool.
    function openSearch(bytes32 searchId, uint256 rewardPerTask_, uint256 epochCap_) external payable {
        if (searchId == bytes32(0)) revert UnknownSearch(searchId);
        Search storage s = _searches[searchId];
        if (s.sponsor != address(0)) revert SearchExists(searchId);
        if (rewardPerTask_ == 0 || rewardPerTask_ > type(uint96).max) revert RewardTooLarge(rewardPerTask_);
        if (epochCap_ < rewardPerTask_ || epochCap_ > type(uint96).max) revert RewardTooLarge(epochCap_);
        s.sponsor = msg.sender;
        s.reward = uint96(rewardPerTask_);
        s.cap = uint96(epochCap_);
        emit SearchOpened(searchId, msg.sender, rewardPerTask_, epochCap_);
        if (msg.value > 0) _fundSearch(searchId, s);
    }

    /// @notice Adds the sent value to the search's pool (anyone may; only the sponsor withdraws).
    function fundSearch(bytes32 searchId) external payable {
        Search storage s = _searches[searchId];
        if (s.sponsor == address(0)) revert UnknownSearch(searchId);
        if (msg.value == 0) revert ZeroFunding();
        _fundSearch(searchId, s);
    }

    /// @notice Stops the search: its batches still settle for `SEARCH_GRACE_SECONDS` (what was leased before
    ///         is paid), then its sponsor may withdraw the pool.
    function closeSearch(bytes32 searchId) external {
        Search storage s = _sponsored(searchId);
        if (s.settleUntil != 0) revert SearchNotOpen(searchId, s.settleUntil);
        uint64 until = uint64(block.timestamp + SEARCH_GRACE_SECONDS);
        s.settleUntil = until;
        emit SearchClosed(searchId, until);
    }

    /// @notice Opens a closed search again (its terms unchanged).
    function reopenSearch(bytes32 searchId) external {
        Search storage s = _sponsored(searchId);
        if (s.settleUntil == 0) revert SearchNotOpen(searchId, 0);
        s.settleUntil = 0;
        emit SearchReopened(searchId);
    }

    /// @notice Pays the sponsor `amount` of its closed search's pool once the grace is over: the pool is what no
    ///         worker is owed, and after the grace no batch of the search can settle.
    function withdrawSearch(bytes32 searchId, uint256 amount) external nonReentrant {
        Search storage s = _sponsored(searchId);
        uint64 until = s.settleUntil;
        if (until == 0 || block.timestamp < until) revert SearchStillSettling(searchId, until);
        uint256 pool_ = s.ledger.pool;
        if (amount == 0 || amount > pool_) revert WithdrawTooLarge(amount, pool_);
        s.ledger.pool = uint128(pool_ - amount);
        emit SearchWithdrawn(searchId, amount, pool_ - amount);
        (bool ok,) = payable(msg.sender).call{value: amount}("");
        if (!ok) revert TransferFailed(msg.sender, amount);
    }

    // ---------------------------------------------------------------- workers

    /// @notice Pays the caller what has matured; same as `claimTo(msg.sender)`.
    function claim() external returns (uint256 amount) {
        return claimTo(payable(msg.sender));
    }

    /// @notice Pays what the caller's credit has matured to `to` (for workers that cannot receive ETH).
    function claimTo(address payable to) public nonReentrant returns (uint256 amount) {
        Account memory a = _accounts[msg.sender];
        uint256 epochNow = _epochNow();
        amount = a.owed;
        if (uint256(a.epoch) + 1 <= epochNow) {
            amount += _previous[msg.sender];
            _previous[msg.sender] = 0;
        }
        if (uint256(a.epoch) + 2 <= epochNow) {
            amount += a.current;
            a.current = 0;
        }
        if (amount == 0) revert NothingToClaim(msg.sender);
        a.owed = 0;
        _accounts[msg.sender] = a;
        emit Claimed(msg.sender, to, amount);
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }

    /// @notice Revokes a session key of the caller for good: later votes signed by it are skipped. Only the
    ///         cached grant of that very key is dropped.
    function revokeSession(address sessionKey) external {
        _revoked[msg.sender][sessionKey] = true;
        if (_grants[msg.sender].sessionKey == sessionKey) delete _grants[msg.sender];
        emit SessionRevoked(msg.sender, sessionKey);
    }

    // ---------------------------------------------------------------- bonds

    /// @notice Adds the sent value to the caller's bond. A bond is what lets a worker run single replicas (the
    ///         coordinator's policy, docs/TRUST.md); a referee verdict that shows one of its votes wrong takes
    ///         all of it (`slash`).
    function depositBond() external payable {
        if (msg.value == 0) revert ZeroBond();
        Bond memory b = _bonds[msg.sender];
        uint256 bonded = uint256(b.bonded) + msg.value;
        if (bonded + b.unbonding > type(uint96).max) revert BondOverflow();
        b.bonded = uint96(bonded);
        _bonds[msg.sender] = b;
        _bondsHeld += msg.value;
        emit BondDeposited(msg.sender, msg.value, bonded);
    }

    /// @notice Stops `amount` of the caller's bond counting as bonded; it can be withdrawn after `unbondDelay()`
    ///         and stays slashable until then (a vote cast before the request can still be shown wrong). A new
    ///         request restarts the wait for everything unbonding.
    function requestUnbond(uint256 amount) external {
        Bond memory b = _bonds[msg.sender];
        if (amount == 0 || amount > b.bonded) revert UnbondTooLarge(amount, b.bonded);
        b.bonded -= uint96(amount);
        b.unbonding += uint96(amount);
        b.availableAt = uint64(block.timestamp + unbondDelay());
        _bonds[msg.sender] = b;
        emit UnbondRequested(msg.sender, amount, b.availableAt);
    }

    /// @notice Pays the caller the part of its bond whose unbonding wait is over.
    function withdrawBond() external nonReentrant returns (uint256 amount) {
        Bond memory b = _bonds[msg.sender];
        amount = b.unbonding;
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        if (block.timestamp < b.availableAt) revert BondLocked(b.availableAt);
        b.unbonding = 0;
        b.availableAt = 0;
        _bonds[msg.sender] = b;
        _bondsHeld -= amount;
        emit BondWithdrawn(msg.sender, amount);
        (bool ok,) = payable(msg.sender).call{value: amount}("");
        if (!ok) revert TransferFailed(msg.sender, amount);
    }

    /// @notice Slashes `worker`'s whole bond (bonded and unbonding) into the reward pool, given its vote for
    ///         `digest` on `taskId` (signed by the worker, or by a session key with the worker's grant) and the
    ///         referee's verdict that the task's digest is `trueDigest`, another digest. Anyone may send the proof;
    ///         nothing of the bond goes to the sender, so a cheater's friend gains nothing by slashing it first.
    ///         A vote signed by a session key counts until `unbondDelay()` after its grant expires, and never once
    ///         the worker has revoked the key. One slash per (task, worker); each also adds a strike.
    function slash(
        bytes32 taskId,
        bytes32 digest,
        address worker,
        bytes calldata voteSig,
        Grant calldata grant,
        bytes32 trueDigest,
        bytes calldata verdictSig
    ) external returns (uint256 amount) {
        if (digest == trueDigest) revert VerdictAgrees(taskId);
        (address referee, ECDSA.RecoverError verr,) =
            ECDSA.tryRecoverCalldata(verdictHash(taskId, trueDigest), verdictSig);
        if (verr != ECDSA.RecoverError.NoError || !hasRole(REFEREE_ROLE, referee)) revert InvalidVerdict(0, referee);
        _checkSlashableVote(taskId, digest, worker, voteSig, grant);
        bytes32 key = keccak256(abi.encode(taskId, worker));
        if (_slashed[key]) revert AlreadySlashed(taskId, worker);
        Bond memory b = _bonds[worker];
        amount = uint256(b.bonded) + b.unbonding;
        if (amount == 0) revert NothingToSlash(worker);
        uint256 pool_ = uint256(_ledger.pool) + amount;
        if (pool_ > type(uint96).max) revert PoolOverflow();
        _slashed[key] = true;
        delete _bonds[worker];
        _bondsHeld -= amount;
        _ledger.pool = uint128(pool_);
        Account storage a = _accounts[worker];
        if (a.strikes < type(uint32).max) ++a.strikes;
        emit Slashed(worker, taskId, digest, amount, msg.sender);
    }

    /// @notice How long unbonding waits: two epochs, the longest a settlement stays challengeable.
    function unbondDelay() public view returns (uint256) {
        return 2 * EPOCH_SECONDS;
    }

    /// @notice The worker's bond: what counts as bonded, what is unbonding and when that can be withdrawn.
    function bondOf(address worker) external view returns (uint256 bonded, uint256 unbonding, uint64 availableAt) {
        Bond memory b = _bonds[worker];
        return (b.bonded, b.unbonding, b.availableAt);
    }

    /// @notice Σ of every worker's bond (bonded and unbonding), held apart from the pool and the credits.
    function bondsHeld() external view returns (uint256) {
        return _bondsHeld;
    }

    /// @notice Whether the worker's bond was slashed for its vote on `taskId`.
    function slashedFor(bytes32 taskId, address worker) external view returns (bool) {
        return _slashed[keccak256(abi.encode(taskId, worker))];
    }

    // ---------------------------------------------------------------- coordinator

    /// @notice Settles a batch of one search's tasks (`searchId` 0: the operator's pool and terms), paid from
    ///         that search's pool at its reward, within its epoch cap. `workers` (strictly ascending) is the table votes point into, `grants` are
    ///         session grants to verify and cache first (invalid ones are skipped with GrantSkipped), `tasks`
    ///         is the packed task records and the last argument, the batch's compact specs, is not read:
    ///         it is in the calldata so the leaderboard can be rebuilt from the chain alone. Invalid votes are
    ///         skipped with VoteSkipped; any other rejection reverts the batch naming the task's index.
    function settle(
        bytes32 searchId,
        address[] calldata workers,
        Grant[] calldata grants,
        bytes calldata tasks,
        bytes calldata /* specs */
    ) external onlyRole(COORDINATOR_ROLE) {
        _checkWorkers(workers);
        for (uint256 i; i < grants.length; ++i) {
            _cacheGrant(grants[i]);
        }
        Batch memory b = _openBatch(workers.length, searchId);
        uint256 p;
        uint256 index;
        while (p < tasks.length) {
            p = _settleOne(index, workers, tasks, p, b);
            ++index;
        }
        if (b.bitsLoaded) _settled[b.bitsWord] = b.bits;
        uint256 batchId = _batchCount;
        _batchCount = uint64(batchId + 1);
        _batches[batchId] = keccak256(abi.encode(_storeCredits(workers, b), b.epoch, searchId));
        Ledger memory after_ = Ledger(uint128(b.pool), uint96(b.epochPaid), b.epoch);
        uint256 paid;
        if (searchId == bytes32(0)) {
            paid = _ledger.pool - b.pool;
            _ledger = after_;
        } else {
            Search storage s = _searches[searchId];
            paid = s.ledger.pool - b.pool;
            s.ledger = after_;
        }
        emit BatchSettled(batchId, searchId, b.epoch, index, b.reward, paid);
    }

    // ---------------------------------------------------------------- views

    function settled(uint64 seq) external view returns (bool) {
        return _settled[seq >> 8] & (1 << (seq & 255)) != 0;
    }

    /// @notice Everything credited to the worker and not claimed yet (matured or pending).
    function owed(address worker) external view returns (uint256) {
        Account memory a = _accounts[worker];
        return uint256(a.owed) + a.current + _previous[worker];
    }

    /// @notice What `claim` would pay the worker now.
    function claimable(address worker) external view returns (uint256 amount) {
        Account memory a = _accounts[worker];
        uint256 epochNow = _epochNow();
        amount = a.owed;
        if (uint256(a.epoch) + 1 <= epochNow) amount += _previous[worker];
        if (uint256(a.epoch) + 2 <= epochNow) amount += a.current;
    }

    function strikes(address worker) external view returns (uint256) {
        return _accounts[worker].strikes;
    }

    /// @notice Reward-pool balance not yet credited to anyone.
    function pool() external view returns (uint256) {
        return _ledger.pool;
    }

    /// @notice A search's terms, when it stops settling (0 while open), its pool and this epoch's payouts.
    function searchOf(bytes32 searchId)
        external
        view
        returns (address sponsor, uint256 reward, uint256 cap, uint64 settleUntil, uint256 pool_, uint256 epochPaid_)
    {
        Search memory s = _searches[searchId];
        uint256 paid = s.ledger.epoch == _epochNow() ? s.ledger.epochPaid : 0;
        return (s.sponsor, s.reward, s.cap, s.settleUntil, s.ledger.pool, paid);
    }

    /// @notice What the sponsor may still withdraw (its funding, as far as the pool goes).
    function withdrawable(address sponsor) external view returns (uint256) {
        uint256 mine = _funded[sponsor];
        return mine < _ledger.pool ? mine : _ledger.pool;
    }

    /// @notice The reward per task of batches settled now.
    function rewardPerTask() external view returns (uint256) {
        return _termsNow().reward;
    }

    /// @notice The minimum quorum of batches settled now.
    function minQuorum() external view returns (uint256) {
        return _termsNow().quorum;
    }

    /// @notice The scheduled change: reward, quorum and the epoch it applies from (0 = none).
    function scheduledTerms() external view returns (uint256 reward, uint256 quorum, uint256 fromEpoch) {
        Terms memory t = _termsNow();
        return (t.nextReward, t.nextQuorum, t.nextFrom);
    }

    function epochCap() external view returns (uint256) {
        return _epochCap;
    }

    /// @notice What the coordinator credited in the current epoch.
    function epochPaid() external view returns (uint256) {
        Ledger memory l = _ledger;
        return l.epoch == _epochNow() ? l.epochPaid : 0;
    }

    function currentEpoch() external view returns (uint256) {
        return _epochNow();
    }

    function batchCount() external view returns (uint256) {
        return _batchCount;
    }

    /// @notice keccak256(abi.encode(creditsChain, epoch, searchId)) of a batch; 0x…01 once voided, 0 if none.
    function batchCommitment(uint256 batchId) external view returns (bytes32) {
        return _batches[batchId];
    }

    /// @notice The worker's cached grant (the key may vote without sending its grant until `expiresAt`).
    function grantOf(address worker) external view returns (address sessionKey, uint64 expiresAt) {
        CachedGrant memory g = _grants[worker];
        return (g.sessionKey, g.expiresAt);
    }

    /// @notice Whether votes of this key for the worker count without sending the grant again.
    function grantCached(address worker, address sessionKey, uint64 expiresAt) external view returns (bool) {
        CachedGrant memory g = _grants[worker];
        return g.sessionKey == sessionKey && g.expiresAt == expiresAt && sessionKey != address(0);
    }

    function sessionRevoked(address worker, address sessionKey) external view returns (bool) {
        return _revoked[worker][sessionKey];
    }

    /// @notice The EIP-712 hash a session key signs for a vote; lets clients cross-check their hashing.
    function voteHash(bytes32 taskId, bytes32 digest, address worker) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(RESULT_VOTE_TYPEHASH, taskId, digest, worker)));
    }

    /// @notice The EIP-712 hash a worker signs for a session grant.
    function grantHash(address worker, address sessionKey, uint64 expiresAt) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(SESSION_GRANT_TYPEHASH, worker, sessionKey, expiresAt)));
    }

    /// @notice The EIP-712 hash the referee signs for its verdict on a task.
    function verdictHash(bytes32 taskId, bytes32 digest) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(REFEREE_VERDICT_TYPEHASH, taskId, digest)));
    }

    /// @notice keccak256(abi.encode(taskId, valCorrect, valCount, valLoss, weightsHash, traceRoot)).
    function resultDigest(
        bytes32 taskId,
        uint32 valCorrect,
        uint32 valCount,
        int64 valLoss,
        bytes32 weightsHash,
        bytes32 traceRoot
    ) public pure returns (bytes32) {
        return keccak256(abi.encode(taskId, valCorrect, valCount, valLoss, weightsHash, traceRoot));
    }

    // ---------------------------------------------------------------- settlement internals

    /// @dev Settles the task record at `p` in `tasks` or reverts naming `index`; returns the next record's offset.
    function _settleOne(
        uint256 index,
        address[] calldata workers,
        bytes calldata tasks,
        uint256 p,
        Batch memory b
    ) private returns (uint256) {
        // Offsets and counts are bounded by the calldata's length: no overflow is possible.
        unchecked {
            if (p + _TASK_FIXED > tasks.length) revert MalformedTask(index);
            (uint256 head, bytes32 taskId, bytes32 digest) = _readTask(tasks, p);
            uint64 seq = uint64(head >> 192);
            _markSettled(index, seq, b);
            bool refereed = (head >> 56) & _HAS_VERDICT != 0;
            p += _TASK_FIXED;
            if (refereed) {
                if (p + _SIG > tasks.length) revert MalformedTask(index);
                (bytes32 r, bytes32 s) = abi.decode(tasks[p:p + 64], (bytes32, bytes32));
                _checkVerdict(index, taskId, digest, r, s, uint8(tasks[p + 64]));
                p += _SIG;
            }
            uint256 won;
            uint256 lost;
            (p, won, lost) = _tally(index, head, taskId, digest, workers, tasks, p, b);
            if (refereed) {
                if (won == 0) revert NoHonestVote(index, seq);
            } else {
                if (2 * won <= won + lost) revert NoMajority(index, seq);
                if (won < b.quorum) revert QuorumNotReached(index, won, b.quorum);
            }
            if (b.epochPaid > b.cap) revert PayoutCapReached(index, b.epochPaid, b.cap);
            return p;
        }
    }

    /// @dev The record's head word, task id and digest (the caller checked the fixed part is there). The head is
    ///      read as the 32 bytes at `p`: its first 27 bytes are the head, the rest belongs to the task id.
    function _readTask(bytes calldata tasks, uint256 p)
        private
        pure
        returns (uint256 head, bytes32 taskId, bytes32 digest)
    {
        unchecked {
            head = uint256(bytes32(tasks[p:p + 32]));
            (bytes32 id, bytes32 weightsHash, bytes32 traceRoot) =
                abi.decode(tasks[p + _HEAD:p + _TASK_FIXED], (bytes32, bytes32, bytes32));
            taskId = id;
            digest = resultDigest(
                id, uint32(head >> 160), uint32(head >> 128), int64(uint64(head >> 64)), weightsHash, traceRoot
            );
        }
    }

    /// @dev Reads the task's vote groups (group 0, counted in the head, votes for `digest`; each later group names
    ///      its digest and count), checks every vote, skips invalid ones and credits valid votes for `digest` and
    ///      strikes valid votes for any other.
    function _tally(
        uint256 index,
        uint256 head,
        bytes32 taskId,
        bytes32 digest,
        address[] calldata workers,
        bytes calldata tasks,
        uint256 p,
        Batch memory b
    ) private returns (uint256 next, uint256 won, uint256 lost) {
        // Offsets and counts are bounded by the calldata's length: no overflow is possible.
        unchecked {
            uint256 groups = 1 + uint8(head >> 48);
            uint256 votes = uint8(head >> 40);
            uint256 seen;
            uint256 total;
            for (uint256 g; g < groups; ++g) {
                bytes32 groupDigest = digest;
                if (g > 0) {
                    if (p + 33 > tasks.length) revert MalformedTask(index);
                    groupDigest = bytes32(tasks[p:p + 32]);
                    if (groupDigest == digest) revert SameDigestGroup(index);
                    votes = uint8(tasks[p + 32]);
                    p += 33;
                }
                total += votes;
                if (total > MAX_VOTES) revert TooManyVotes(index, total);
                if (p + votes * _VOTE > tasks.length) revert MalformedTask(index);
                // Each vote for the settled digest earns an equal share; the share of a skipped vote stays in the pool.
                uint256 each;
                if (g == 0 && votes > 0) each = (b.reward < b.pool ? b.reward : b.pool) / votes;
                for (uint256 v; v < votes; ++v) {
                    (bytes32 r, bytes32 s) = abi.decode(tasks[p:p + 64], (bytes32, bytes32));
                    // v and the worker's index, one read.
                    uint256 tail = uint16(bytes2(tasks[p + 64:p + _VOTE]));
                    p += _VOTE;
                    uint256 w = tail & 0xff;
                    if (w >= workers.length) revert UnknownWorker(index, w);
                    address worker = workers[w];
                    if ((seen >> w) & 1 != 0) revert DuplicateWorker(index, worker);
                    seen |= 1 << w;
                    bytes32 hash = MessageHashUtils.toTypedDataHash(
                        b.domain, keccak256(abi.encode(RESULT_VOTE_TYPEHASH, taskId, groupDigest, worker))
                    );
                    uint8 skip = _checkVote(hash, worker, uint8(tail >> 8), r, s, b.grants, w);
                    if (skip != 0) {
                        emit VoteSkipped(uint64(head >> 192), worker, skip);
                    } else if (g == 0) {
                        ++won;
                        if (each != 0) _credit(b, w, each);
                    } else {
                        ++lost;
                        Account storage a = _accounts[worker];
                        if (a.strikes < type(uint32).max) ++a.strikes;
                    }
                }
            }
            return (p, won, lost);
        }
    }

    /// @dev 0 if the vote (`hash` is its EIP-712 hash) is valid now, else why it is skipped. A vote is signed by
    ///      the worker itself or by its cached, unexpired session key. The grant is read from storage once per
    ///      worker and batch (`grants`, by the worker's index `w`): nothing in a batch changes it after the batch's
    ///      grants are cached.
    function _checkVote(
        bytes32 hash,
        address worker,
        uint8 v,
        bytes32 r,
        bytes32 s,
        uint256[] memory grants,
        uint256 w
    ) private view returns (uint8) {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, v, r, s);
        if (err == ECDSA.RecoverError.InvalidSignatureS) return SKIP_MALLEABLE;
        if (err != ECDSA.RecoverError.NoError) return SKIP_BAD_SIGNATURE;
        if (signer == worker) return 0;
        uint256 grant = grants[w];
        if (grant & _GRANT_LOADED == 0) {
            CachedGrant memory g = _grants[worker];
            grant = _GRANT_LOADED | (uint256(g.expiresAt) << 160) | uint160(g.sessionKey);
            grants[w] = grant;
        }
        if (signer != address(uint160(grant))) return _revoked[worker][signer] ? SKIP_REVOKED : SKIP_BAD_SIGNATURE;
        if (uint64(grant >> 160) <= block.timestamp) return SKIP_EXPIRED;
        return 0;
    }

    /// @dev Reverts unless `voteSig` is the worker's vote for (taskId, digest): signed by the worker, or by the
    ///      session key of `grant` (signed by the worker, not revoked, expired less than `unbondDelay()` ago).
    function _checkSlashableVote(
        bytes32 taskId,
        bytes32 digest,
        address worker,
        bytes calldata voteSig,
        Grant calldata grant
    ) private view {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(voteHash(taskId, digest, worker), voteSig);
        if (err != ECDSA.RecoverError.NoError) revert InvalidVote(worker, address(0));
        if (signer == worker) return;
        bool granted = grant.worker == worker && grant.sessionKey == signer && !_revoked[worker][signer]
            && block.timestamp < uint256(grant.expiresAt) + unbondDelay() && _checkGrantSignature(grant) == 0;
        if (!granted) revert InvalidVote(worker, signer);
    }

    function _checkVerdict(uint256 index, bytes32 taskId, bytes32 digest, bytes32 r, bytes32 s, uint8 v)
        private
        view
    {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(verdictHash(taskId, digest), v, r, s);
        if (err != ECDSA.RecoverError.NoError || !hasRole(REFEREE_ROLE, signer)) revert InvalidVerdict(index, signer);
    }

    /// @dev Credits `amount` to the worker at index `w` out of the pool, in memory, and adds it to the epoch's
    ///      payouts (checked against the cap per task). `_storeCredits` writes the batch's credits at its end.
    function _credit(Batch memory b, uint256 w, uint256 amount) private pure {
        // A task's shares are min(reward, pool) / votes each, so they never take more than the pool holds, and
        // every sum here is at most the pool (a uint128): nothing can wrap.
        unchecked {
            b.pool -= amount;
            b.epochPaid += amount;
            b.credits[w] += amount;
        }
    }

    /// @dev Adds each worker's credit of the batch to its pending credit of the batch's epoch (one storage write
    ///      per worker and batch) and returns the keccak chain over `(worker, amount)` in table order, skipping
    ///      workers credited nothing: the commitment `voidBatch` checks.
    function _storeCredits(address[] calldata workers, Batch memory b) private returns (bytes32 chain) {
        for (uint256 w; w < workers.length; ++w) {
            uint256 amount = b.credits[w];
            if (amount == 0) continue;
            address worker = workers[w];
            chain = keccak256(abi.encode(chain, worker, amount));
            Account storage a = _accounts[worker];
            if (a.epoch != b.epoch) _rollEpoch(worker, a, b.epoch);
            a.current += uint96(amount);
        }
    }

    /// @dev The worker's first credit of `epoch`: last epoch's credit waits one more epoch in `_previous`,
    ///      anything older has matured and moves to `owed`.
    function _rollEpoch(address worker, Account storage a, uint32 epoch) private {
        uint256 previous = _previous[worker];
        uint256 current = a.current;
        if (uint256(a.epoch) + 1 == epoch) {
            a.owed += uint96(previous);
            if (previous != current) _previous[worker] = current;
        } else {
            a.owed += uint96(previous + current);
            if (previous != 0) _previous[worker] = 0;
        }
        a.current = 0;
        a.epoch = epoch;
    }

    /// @dev Takes back a pending credit of `epoch` (the caller checked it has not matured).
    function _uncredit(address worker, uint256 amount, uint32 epoch) private {
        Account storage a = _accounts[worker];
        if (a.epoch == epoch) a.current -= uint96(amount);
        else _previous[worker] -= amount;
    }

    /// @dev Sets the seq's bit in the batch's copy of its bitmap word; a word is read once and stored when the
    ///      batch moves to another word (and at its end), so consecutive seqs cost one slot write per 256.
    function _markSettled(uint256 index, uint64 seq, Batch memory b) private {
        uint256 word = seq >> 8;
        if (!b.bitsLoaded || word != b.bitsWord) {
            if (b.bitsLoaded) _settled[b.bitsWord] = b.bits;
            b.bitsWord = word;
            b.bits = _settled[word];
            b.bitsLoaded = true;
        }
        uint256 bit = 1 << (seq & 255);
        if (b.bits & bit != 0) revert AlreadySettled(index, seq);
        b.bits |= bit;
    }

    /// @dev Votes name workers by their index in this table; ascending order rules out one address twice.
    function _checkWorkers(address[] calldata workers) private pure {
        if (workers.length > MAX_WORKERS) revert TooManyWorkers(workers.length);
        for (uint256 i = 1; i < workers.length; ++i) {
            if (workers[i] <= workers[i - 1]) revert WorkersNotAscending(i);
        }
    }

    /// @dev Verifies a grant and caches it as the worker's grant, or skips it with GrantSkipped.
    function _cacheGrant(Grant calldata g) private {
        uint8 skip;
        if (g.expiresAt <= block.timestamp) skip = SKIP_EXPIRED;
        else if (_revoked[g.worker][g.sessionKey]) skip = SKIP_REVOKED;
        else skip = _checkGrantSignature(g);
        if (skip != 0) {
            emit GrantSkipped(g.worker, g.sessionKey, skip);
            return;
        }
        _grants[g.worker] = CachedGrant(g.sessionKey, g.expiresAt);
    }

    /// @dev The account's own key first (ECDSA), then ERC-1271 with at most ERC1271_GAS for a smart account.
    ///      Key first: an EOA that delegates its code after voting (EIP-7702) keeps its key, so a vote it signed
    ///      stays countable and the delegation is no veto; a contract account has no key, so ECDSA never
    ///      recovers to it.
    function _checkGrantSignature(Grant calldata g) private view returns (uint8) {
        bytes32 hash = grantHash(g.worker, g.sessionKey, g.expiresAt);
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(hash, g.signature);
        if (err == ECDSA.RecoverError.NoError && signer == g.worker) return 0;
        if (g.worker.code.length == 0) {
            return err == ECDSA.RecoverError.InvalidSignatureS ? SKIP_MALLEABLE : SKIP_BAD_SIGNATURE;
        }
        (bool ok, bytes memory ret) =
            g.worker.staticcall{gas: ERC1271_GAS}(abi.encodeCall(IERC1271.isValidSignature, (hash, g.signature)));
        bool valid = ok && ret.length == 32 && abi.decode(ret, (bytes4)) == IERC1271.isValidSignature.selector;
        return valid ? 0 : SKIP_BAD_SIGNATURE;
    }

    /// @dev Loads what a batch reads once: terms in force (applying a scheduled change that is due), the paying
    ///      search's pool, this epoch's payouts and the cap. A sponsor's search has its own reward and cap and
    ///      settles until its grace after closing is over; the quorum is the operator's for every search.
    function _openBatch(uint256 workers, bytes32 searchId) private returns (Batch memory b) {
        Terms memory t = _terms;
        Terms memory due = _termsNow();
        if (due.nextFrom != t.nextFrom) _terms = due;
        Ledger memory l;
        if (searchId == bytes32(0)) {
            l = _ledger;
            b.reward = due.reward;
            b.cap = _epochCap;
        } else {
            Search memory s = _searches[searchId];
            if (s.sponsor == address(0)) revert UnknownSearch(searchId);
            if (s.settleUntil != 0 && block.timestamp >= s.settleUntil) revert SearchNotOpen(searchId, s.settleUntil);
            l = s.ledger;
            b.reward = s.reward;
            b.cap = s.cap;
        }
        uint32 epoch = uint32(_epochNow());
        b.quorum = due.quorum;
        b.pool = l.pool;
        b.epochPaid = l.epoch == epoch ? l.epochPaid : 0;
        b.epoch = epoch;
        b.domain = _domainSeparatorV4();
        b.credits = new uint256[](workers);
        b.grants = new uint256[](workers);
    }

    function _fundSearch(bytes32 searchId, Search storage s) private {
        uint256 pool_ = uint256(s.ledger.pool) + msg.value;
        if (pool_ > type(uint96).max) revert PoolOverflow();
        s.ledger.pool = uint128(pool_);
        emit SearchFunded(searchId, msg.sender, msg.value, pool_);
    }

    /// @dev The search, if the caller is its sponsor.
    function _sponsored(bytes32 searchId) private view returns (Search storage s) {
        s = _searches[searchId];
        if (s.sponsor == address(0)) revert UnknownSearch(searchId);
        if (s.sponsor != msg.sender) revert NotSponsor(searchId, msg.sender);
    }

    function _epochNow() private view returns (uint256) {
        return block.timestamp / EPOCH_SECONDS;
    }

    /// @dev The terms with a scheduled change applied once its epoch has come.
    function _termsNow() private view returns (Terms memory t) {
        t = _terms;
        if (t.nextFrom != 0 && _epochNow() >= t.nextFrom) {
            t = Terms(t.nextReward, t.nextQuorum, 0, 0, 0);
        }
    }

    function _schedule(Terms memory t, uint256 reward, uint256 quorum) private {
        _checkTerms(reward, quorum);
        uint32 from = uint32(_epochNow() + 1);
        _terms = Terms(t.reward, t.quorum, uint96(reward), uint16(quorum), from);
        emit TermsScheduled(reward, quorum, from);
    }

    function _checkTerms(uint256 reward, uint256 quorum) private pure {
        if (reward > type(uint96).max) revert RewardTooLarge(reward);
        if (quorum < 2 || quorum > MAX_VOTES) revert InvalidQuorum(quorum);
    }

    function _setEpochCap(uint256 epochCap_) private {
        if (epochCap_ > type(uint96).max) revert RewardTooLarge(epochCap_);
        _epochCap = uint96(epochCap_);
        emit EpochCapSet(epochCap_);
    }
}
