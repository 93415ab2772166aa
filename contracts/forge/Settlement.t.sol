// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Settlement} from "../Settlement.sol";

/// @dev The few forge cheatcodes these tests use (no forge-std: nothing to download).
interface Vm {
    function warp(uint256 timestamp) external;
    function prank(address sender) external;
    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);
    function addr(uint256 privateKey) external pure returns (address);
    function deal(address who, uint256 amount) external;
    function assume(bool condition) external pure;
    function etch(address target, bytes calldata newRuntimeBytecode) external;
    function expectRevert(bytes calldata revertData) external;
}

/// @dev Builds settle's calldata (docs/CONTRACT.md, "settle v2") and deploys a contract with separate roles.
abstract contract Kit {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    uint256 internal constant REWARD = 1e15;
    uint256 internal constant EPOCH = 1 days;
    uint256 internal constant GRACE = 2 hours;
    address internal constant ADMIN = address(0xA11CE);
    uint256 internal constant COORDINATOR_KEY = 0xC0;
    uint256 internal constant REFEREE_KEY = 0xEF;
    uint256 internal constant WORKERS = 6;

    function _deploy(uint256 cap) internal returns (Settlement s) {
        vm.warp(1_000 days);
        s = new Settlement(ADMIN, vm.addr(COORDINATOR_KEY), vm.addr(REFEREE_KEY), REWARD, 2, cap, EPOCH, GRACE);
    }

    function _workerKey(uint256 i) internal pure returns (uint256) {
        return 0x1000 + i;
    }

    function _sig(uint256 key, bytes32 hash) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, hash);
        return abi.encodePacked(r, s, v);
    }

    function _digest(Settlement s, uint64 seq) internal pure returns (bytes32 taskId, bytes32 digest) {
        taskId = keccak256(abi.encode("task", seq));
        digest = s.resultDigest(taskId, 900, 1000, -5, keccak256(abi.encode("w", seq)), keccak256(abi.encode("t", seq)));
    }

    /// @dev Byte of the record holding the count of votes for the task's digest (the head's last byte).
    uint256 internal constant VOTES_BYTE = 26;

    function _head(uint64 seq, bytes32 taskId, bytes memory verdict, uint256 otherGroups, uint256 votes)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encodePacked(
            abi.encodePacked(
                seq, uint32(900), uint32(1000), int64(-5), uint8(verdict.length > 0 ? 1 : 0), uint8(otherGroups), uint8(votes)
            ),
            taskId,
            keccak256(abi.encode("w", seq)),
            keccak256(abi.encode("t", seq)),
            verdict
        );
    }

    /// @dev Own-key votes: `agree` workers (ids) for the digest in group 0, `dissent` for another digest.
    function _task(Settlement s, uint64 seq, uint256[] memory agree, uint256[] memory dissent, bool refereed)
        internal
        view
        returns (address[] memory workers, bytes memory tasks)
    {
        workers = _table();
        (bytes32 taskId, bytes32 digest) = _digest(s, seq);
        bytes memory verdict = refereed ? _sig(REFEREE_KEY, s.verdictHash(taskId, digest)) : bytes("");
        tasks = abi.encodePacked(_head(seq, taskId, verdict, dissent.length > 0 ? 1 : 0, agree.length));
        tasks = abi.encodePacked(tasks, _votes(s, workers, taskId, digest, agree));
        if (dissent.length > 0) {
            bytes32 wrong = keccak256(abi.encode("wrong", seq));
            tasks = abi.encodePacked(tasks, wrong, uint8(dissent.length), _votes(s, workers, taskId, wrong, dissent));
        }
    }

    /// @dev Each vote: its signature, then the voter's index in the workers table.
    function _votes(Settlement s, address[] memory workers, bytes32 taskId, bytes32 digest, uint256[] memory ids)
        internal
        view
        returns (bytes memory out)
    {
        for (uint256 i; i < ids.length; ++i) {
            uint256 key = _workerKey(ids[i]);
            uint8 index = _indexOf(workers, vm.addr(key));
            out = abi.encodePacked(out, _sig(key, s.voteHash(taskId, digest, vm.addr(key))), index);
        }
    }

    /// @dev Every worker's address, ascending (the table settle wants).
    function _table() internal pure returns (address[] memory t) {
        t = new address[](WORKERS);
        for (uint256 i; i < WORKERS; ++i) {
            address a = vm.addr(_workerKey(i));
            uint256 j = i;
            while (j > 0 && t[j - 1] > a) {
                t[j] = t[j - 1];
                --j;
            }
            t[j] = a;
        }
    }

    function _indexOf(address[] memory t, address a) internal pure returns (uint8) {
        for (uint256 i; i < t.length; ++i) {
            if (t[i] == a) return uint8(i);
        }
        revert("not in table");
    }

    function _ids(uint256 from, uint256 count) internal pure returns (uint256[] memory ids) {
        ids = new uint256[](count);
        for (uint256 i; i < count; ++i) {
            ids[i] = (from + i) % WORKERS;
        }
    }
}

/// @dev Random fund / settle (honest, minority, refereed, replayed, duplicated, invented; one task or several in a
///      batch) / claim / warp actions for the invariant run, with a model of what must happen.
contract Handler is Kit {
    Settlement public s;
    uint64 public nextSeq = 1;
    uint256 public funded;
    uint256 public claimed;
    /// @dev Set when the contract accepted what the rules forbid.
    string public violation;
    mapping(address => uint256) public modelOwed;
    uint256 public bondsDeposited;
    uint256 public bondsWithdrawn;
    uint256 public bondsSlashed;
    mapping(address => uint256) public modelBond;
    /// @dev The operator's pool (0) and two sponsors' searches; what each pool holds by the model.
    bytes32[3] public searchIds;
    mapping(bytes32 => uint256) public modelPool;
    uint256 public withdrawn;

    constructor(Settlement s_) {
        s = s_;
        modelPool[bytes32(0)] = s.pool();
        for (uint256 i = 1; i < 3; ++i) {
            bytes32 id = keccak256(abi.encode("search", i));
            searchIds[i] = id;
            address sponsor = address(uint160(0x5000 + i));
            vm.deal(sponsor, 1 ether);
            vm.prank(sponsor);
            // Search 1 pays twice the operator's reward, search 2 half; each its own cap.
            s.openSearch{value: 1 ether}(id, i == 1 ? 2 * REWARD : REWARD / 2, 10 * REWARD * i);
            modelPool[id] = 1 ether;
            funded += 1 ether;
        }
    }

    function depositBond(uint8 worker, uint96 amount) external {
        address w = vm.addr(_workerKey(bound(worker, 0, WORKERS - 1)));
        amount = uint96(bound(amount, 1, 5 ether));
        vm.deal(w, amount);
        vm.prank(w);
        s.depositBond{value: amount}();
        bondsDeposited += amount;
        modelBond[w] += amount;
    }

    function requestUnbond(uint8 worker, uint96 amount) external {
        address w = vm.addr(_workerKey(bound(worker, 0, WORKERS - 1)));
        (uint256 bonded,,) = s.bondOf(w);
        if (bonded == 0) return;
        vm.prank(w);
        s.requestUnbond(bound(amount, 1, bonded));
    }

    function withdrawBond(uint8 worker) external {
        address w = vm.addr(_workerKey(bound(worker, 0, WORKERS - 1)));
        (, uint256 unbonding, uint64 availableAt) = s.bondOf(w);
        uint256 before = w.balance;
        vm.prank(w);
        try s.withdrawBond() returns (uint256 amount) {
            if (unbonding == 0 || block.timestamp < availableAt) violation = "withdrew a locked or empty bond";
            if (amount != unbonding || w.balance != before + amount) violation = "withdrew the wrong amount";
            bondsWithdrawn += amount;
            modelBond[w] -= amount;
        } catch {
            if (unbonding > 0 && block.timestamp >= availableAt) violation = "refused a matured withdrawal";
        }
    }

    /// @dev A wrong vote of `worker` on a task the referee decided otherwise (`withVerdict`), or without a
    ///      verdict (a verdict for the voted digest itself, or none signed by the referee): slashes exactly then.
    function slash(uint8 worker, uint64 taskSeed, bool withVerdict, bool byReferee) external {
        uint256 key = _workerKey(bound(worker, 0, WORKERS - 1));
        address w = vm.addr(key);
        bytes32 taskId = keccak256(abi.encode("slash", taskSeed));
        bytes32 lie = keccak256(abi.encode("lie", taskSeed));
        bytes32 truth = withVerdict ? keccak256(abi.encode("truth", taskSeed)) : lie;
        bytes memory verdict = _sig(byReferee ? REFEREE_KEY : COORDINATOR_KEY, s.verdictHash(taskId, truth));
        bytes memory vote = _sig(key, s.voteHash(taskId, lie, w));
        Settlement.Grant memory none;
        (uint256 bonded, uint256 unbonding,) = s.bondOf(w);
        bool already = s.slashedFor(taskId, w);
        uint256 pool = s.pool();
        try s.slash(taskId, lie, w, vote, none, truth, verdict) returns (uint256 amount) {
            if (!withVerdict || !byReferee || already) violation = "slashed without a verdict against the vote";
            if (amount != bonded + unbonding || s.pool() != pool + amount) violation = "slash amount or pool wrong";
            bondsSlashed += amount;
            modelBond[w] = 0;
            modelPool[bytes32(0)] += amount;
        } catch {
            if (withVerdict && byReferee && !already && bonded + unbonding > 0) violation = "refused a valid slash";
        }
    }

    function fund(uint96 amount) external {
        amount = uint96(bound(amount, 1, 10 ether));
        vm.deal(address(this), amount);
        s.fund{value: amount}();
        funded += amount;
        modelPool[bytes32(0)] += amount;
    }

    /// @dev One task paid from pool `which` (0: the operator's, 1 and 2: sponsors' searches).
    function settle(uint8 agreeCount, uint8 dissentCount, uint8 from, bool refereed, uint8 mode, uint8 which)
        external
    {
        uint256 agree = bound(agreeCount, 0, 4);
        uint256[] memory yes = _ids(from, agree);
        uint256[] memory no = _ids(uint256(from) + agree, bound(dissentCount, 0, WORKERS - agree));
        mode = uint8(bound(mode, 0, 3));
        bool replay = mode == 1 && nextSeq > 1;
        bool duplicate = mode == 2 && agree > 0;
        if (duplicate) no = _withFirstOf(no, yes[0]);
        uint64 seq = replay ? nextSeq - 1 : nextSeq;
        bytes32 id = searchIds[bound(which, 0, 2)];
        (bool allowed, uint256 each, bool overCap) = this.expect(id, agree, no.length, refereed, !replay && !duplicate);
        (address[] memory workers, bytes memory tasks) = _task(s, seq, yes, no, refereed);
        vm.prank(vm.addr(COORDINATOR_KEY));
        try s.settle(id, workers, new Settlement.Grant[](0), tasks, "") {
            if (!allowed) violation = "settled what the rules forbid";
            if (overCap) violation = "paid past the epoch cap";
            for (uint256 i; i < agree; ++i) modelOwed[vm.addr(_workerKey(yes[i]))] += each;
            modelPool[id] -= each * agree;
            nextSeq = seq + 1;
        } catch {
            if (allowed && !overCap) violation = "refused a valid settlement";
        }
    }

    /// @dev Whether the rules allow the task on pool `id`, each winner's share, and whether it passes the cap.
    ///      (Called externally: inlined into settle, its locals overflow the stack.)
    function expect(bytes32 id, uint256 agree, uint256 dissent, bool refereed, bool fresh)
        external
        view
        returns (bool allowed, uint256 each, bool overCap)
    {
        (uint256 reward, uint256 cap, uint256 pool, uint256 paid, bool open) = _terms(id);
        allowed = open && fresh && (refereed ? agree >= 1 : (2 * agree > agree + dissent && agree >= s.minQuorum()));
        each = agree == 0 ? 0 : (reward < pool ? reward : pool) / agree;
        overCap = paid + each * agree > cap;
    }

    /// @dev The terms, pool, epoch payouts and whether it settles now, of the operator's pool or a search.
    function _terms(bytes32 id)
        internal
        view
        returns (uint256 reward, uint256 cap, uint256 pool, uint256 paid, bool open)
    {
        if (id == bytes32(0)) return (s.rewardPerTask(), s.epochCap(), s.pool(), s.epochPaid(), true);
        uint64 until;
        (, reward, cap, until, pool, paid) = s.searchOf(id);
        open = until == 0 || block.timestamp < until;
    }

    function fundSearch(uint8 which, uint96 amount) external {
        bytes32 id = searchIds[bound(which, 1, 2)];
        amount = uint96(bound(amount, 1, 10 ether));
        vm.deal(address(this), amount);
        s.fundSearch{value: amount}(id);
        funded += amount;
        modelPool[id] += amount;
    }

    /// @dev The sponsor closes (or reopens) its search; anyone else is refused.
    function closeSearch(uint8 which, bool bySponsor) external {
        bytes32 id = searchIds[bound(which, 1, 2)];
        (address sponsor,,, uint64 until,,) = s.searchOf(id);
        vm.prank(bySponsor ? sponsor : address(0xBAD));
        if (until == 0) {
            try s.closeSearch(id) {
                if (!bySponsor) violation = "closed another's search";
            } catch {
                if (bySponsor) violation = "refused the sponsor's close";
            }
        } else {
            try s.reopenSearch(id) {
                if (!bySponsor) violation = "reopened another's search";
            } catch {
                if (bySponsor) violation = "refused the sponsor's reopen";
            }
        }
    }

    /// @dev Withdraws from a search: only its sponsor, only once closed and past the grace, at most its pool.
    function withdrawSearch(uint8 which, bool bySponsor, uint96 amount) external {
        bytes32 id = searchIds[bound(which, 1, 2)];
        (address sponsor,,, uint64 until, uint256 pool,) = s.searchOf(id);
        address caller = bySponsor ? sponsor : address(0xBAD);
        uint256 take = bound(amount, 1, pool + 1);
        bool allowed = bySponsor && until != 0 && block.timestamp >= until && take <= pool;
        uint256 before = caller.balance;
        vm.prank(caller);
        try s.withdrawSearch(id, take) {
            if (!allowed) violation = "withdrew what the rules forbid";
            if (caller.balance != before + take) violation = "withdrew the wrong amount";
            withdrawn += take;
            modelPool[id] -= take;
        } catch {
            if (allowed) violation = "refused a valid withdrawal";
        }
    }

    /// @dev Two to four honest tasks in one batch from overlapping workers: the contract adds each worker's shares
    ///      up in memory and stores them once per batch, the model adds them one by one.
    function settleMany(uint8 countSeed, uint8 from) external {
        uint256 count = bound(countSeed, 2, 4);
        uint256[][] memory yes = new uint256[][](count);
        uint256[] memory each = new uint256[](count);
        (bytes memory tasks, uint256 paid) = _fillMany(yes, each, from);
        bool overCap = s.epochPaid() + paid > s.epochCap();
        vm.prank(vm.addr(COORDINATOR_KEY));
        try s.settle(bytes32(0), _table(), new Settlement.Grant[](0), tasks, "") {
            if (overCap) violation = "paid past the epoch cap";
            _creditMany(yes, each);
        } catch {
            if (!overCap) violation = "refused a valid batch";
        }
    }

    /// @dev Fills `yes` (overlapping pairs of workers) and `each` (a winner's share) for honest tasks from the
    ///      next seq on; returns their records and the batch's payout from the operator's pool.
    function _fillMany(uint256[][] memory yes, uint256[] memory each, uint8 from)
        private
        view
        returns (bytes memory tasks, uint256 paid)
    {
        uint256 pool = s.pool();
        for (uint256 t; t < yes.length; ++t) {
            yes[t] = _ids(uint256(from) + t, 2);
            (, bytes memory one) = _task(s, nextSeq + uint64(t), yes[t], new uint256[](0), false);
            tasks = abi.encodePacked(tasks, one);
            each[t] = (REWARD < pool ? REWARD : pool) / 2;
            pool -= 2 * each[t];
            paid += 2 * each[t];
        }
    }

    /// @dev The model's side of an accepted settleMany batch (the operator's pool pays it).
    function _creditMany(uint256[][] memory yes, uint256[] memory each) private {
        for (uint256 t; t < yes.length; ++t) {
            for (uint256 i; i < 2; ++i) {
                modelOwed[vm.addr(_workerKey(yes[t][i]))] += each[t];
            }
            modelPool[bytes32(0)] -= 2 * each[t];
        }
        nextSeq += uint64(yes.length);
    }

    function claim(uint8 worker) external {
        address w = vm.addr(_workerKey(bound(worker, 0, WORKERS - 1)));
        uint256 amount = s.claimable(w);
        if (amount == 0) return;
        vm.prank(w);
        s.claim();
        claimed += amount;
        modelOwed[w] -= amount;
    }

    function warp(uint32 seconds_) external {
        vm.warp(block.timestamp + bound(seconds_, 1, 3 days));
    }

    function _withFirstOf(uint256[] memory ids, uint256 extra) private pure returns (uint256[] memory out) {
        out = new uint256[](ids.length + 1);
        out[0] = extra;
        for (uint256 i; i < ids.length; ++i) {
            out[i + 1] = ids[i];
        }
    }

    function bound(uint256 x, uint256 lo, uint256 hi) internal pure returns (uint256) {
        return lo + (x % (hi - lo + 1));
    }

    receive() external payable {}
}

/// @notice Invariants (forge: [invariant] runs × depth in foundry.toml) and fuzzed signature and grant rules.
contract SettlementInvariants is Kit {
    Settlement internal s;
    Handler internal handler;

    function setUp() public {
        s = _deploy(20 * REWARD);
        vm.deal(address(this), 1 ether);
        s.fund{value: 1 ether}();
        handler = new Handler(s);
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function _sumOwed() internal view returns (uint256 total) {
        for (uint256 i; i < WORKERS; ++i) {
            total += s.owed(vm.addr(_workerKey(i)));
        }
    }

    /// The operator's pool and each search's pool.
    function _sumPools() internal view returns (uint256 total) {
        total = s.pool();
        for (uint256 i = 1; i < 3; ++i) {
            (,,,, uint256 pool,) = s.searchOf(handler.searchIds(i));
            total += pool;
        }
    }

    /// Σowed + Σclaimed + Σpools + Σwithdrawn = Σfunded + Σslashed (over the operator's pool and every search),
    /// bonds held = Σdeposited − Σwithdrawn − Σslashed, and the balance holds exactly Σpools + Σowed + bonds held.
    function invariant_accounting() public view {
        uint256 owedTotal = _sumOwed();
        uint256 pools = _sumPools();
        require(
            pools + owedTotal + handler.claimed() + handler.withdrawn()
                == 1 ether + handler.funded() + handler.bondsSlashed(),
            "funds do not add up"
        );
        require(
            s.bondsHeld() == handler.bondsDeposited() - handler.bondsWithdrawn() - handler.bondsSlashed(),
            "bonds do not add up"
        );
        require(address(s).balance == pools + owedTotal + s.bondsHeld(), "balance is not pools + owed + bonds");
    }

    /// Each pool holds what was put in it less what its own tasks were paid and its sponsor withdrew: no search's
    /// funds pay another's tasks. And no search is paid past its own epoch cap.
    function invariant_poolsMatchModel() public view {
        require(s.pool() == handler.modelPool(bytes32(0)), "the operator's pool differs from the model");
        for (uint256 i = 1; i < 3; ++i) {
            bytes32 id = handler.searchIds(i);
            (,, uint256 cap,, uint256 pool, uint256 paid) = s.searchOf(id);
            require(pool == handler.modelPool(id), "a search's pool differs from the model");
            require(paid <= cap, "a search's epoch cap exceeded");
        }
    }

    /// Every worker's bond (bonded + unbonding) is what the model deposited, withdrew and lost to slashes.
    function invariant_bondsMatchModel() public view {
        for (uint256 i; i < WORKERS; ++i) {
            address w = vm.addr(_workerKey(i));
            (uint256 bonded, uint256 unbonding,) = s.bondOf(w);
            require(bonded + unbonding == handler.modelBond(w), "bond differs from the model");
        }
    }

    /// Settled once, no reward without a valid strict majority or verdict, no worker counted twice, and the
    /// coordinator (a stolen key included) never credits past the epoch cap.
    function invariant_rules() public view {
        require(bytes(handler.violation()).length == 0, handler.violation());
        require(s.epochPaid() <= s.epochCap(), "epoch cap exceeded");
    }

    /// Each run settles something (the invariants above are not vacuous).
    function afterInvariant() public view {
        require(handler.nextSeq() > 1, "no settlement in this run");
    }

    /// Every worker is owed exactly what the model credited it.
    function invariant_owedMatchesModel() public view {
        for (uint256 i; i < WORKERS; ++i) {
            address w = vm.addr(_workerKey(i));
            require(s.owed(w) == handler.modelOwed(w), "owed differs from the model");
        }
    }
}

contract SettlementFuzz is Kit {
    Settlement internal s;

    function setUp() public {
        s = _deploy(1 ether);
        vm.deal(address(this), 1 ether);
        s.fund{value: 1 ether}();
    }

    /// Worker `i`'s grant of `sessionKey` until `expiresAt`, signed by the worker's own key, as settle's `grants`.
    function _grantOf(uint256 i, uint256 sessionKey, uint64 expiresAt) internal view returns (Settlement.Grant[] memory grants) {
        address worker = vm.addr(_workerKey(i));
        grants = new Settlement.Grant[](1);
        grants[0] = Settlement.Grant(
            worker, vm.addr(sessionKey), expiresAt, _sig(_workerKey(i), s.grantHash(worker, vm.addr(sessionKey), expiresAt))
        );
    }

    function _settle(address[] memory workers, Settlement.Grant[] memory grants, bytes memory tasks) internal {
        vm.prank(vm.addr(COORDINATOR_KEY));
        s.settle(bytes32(0), workers, grants, tasks, "");
    }

    /// A vote with any other signature (random, malformed v, high s) is skipped and never paid.
    function testFuzz_forgedVoteNeverPays(bytes32 r, bytes32 sigS, uint8 v) public {
        uint64 seq = 1;
        (address[] memory workers, bytes memory tasks) = _task(s, seq, _ids(0, 2), new uint256[](0), false);
        // A third vote for the digest by worker 2 with the fuzzed signature, appended to group 0.
        address victim = vm.addr(_workerKey(2));
        (bytes32 taskId, bytes32 digest) = _digest(s, seq);
        bytes memory honest = _sig(_workerKey(2), s.voteHash(taskId, digest, victim));
        bytes memory forged = abi.encodePacked(r, sigS, v);
        vm.assume(keccak256(forged) != keccak256(honest));
        tasks[VOTES_BYTE] = bytes1(uint8(3));
        tasks = abi.encodePacked(tasks, forged, _indexOf(workers, victim));
        _settle(workers, new Settlement.Grant[](0), tasks);
        require(s.owed(victim) == 0, "a forged vote was paid");
        require(s.owed(vm.addr(_workerKey(0))) == REWARD / 3, "honest share");
    }

    /// A session key's vote counts exactly while its grant is unexpired at settlement.
    function testFuzz_grantExpiry(uint32 lifetime, uint32 wait) public {
        uint256 sessionKey = 0xBEEF;
        address worker = vm.addr(_workerKey(0));
        uint64 expiresAt = uint64(block.timestamp + 1 + (lifetime % 30 days));
        Settlement.Grant[] memory grants = _grantOf(0, sessionKey, expiresAt);
        vm.warp(block.timestamp + (wait % 40 days));
        uint64 seq = 7;
        (address[] memory workers, bytes memory tasks) = _task(s, seq, _ids(1, 2), new uint256[](0), false);
        (bytes32 taskId, bytes32 digest) = _digest(s, seq);
        tasks[VOTES_BYTE] = bytes1(uint8(3));
        tasks = abi.encodePacked(tasks, _sig(sessionKey, s.voteHash(taskId, digest, worker)), _indexOf(workers, worker));
        _settle(workers, grants, tasks);
        bool live = block.timestamp < expiresAt;
        require((s.owed(worker) > 0) == live, "expiry rule broken");
    }

    /// Revoking any key but the cached one leaves the cached grant working; revoking that one stops it.
    function testFuzz_revokeOtherKey(address other) public {
        uint256 sessionKey = 0xBEEF;
        address worker = vm.addr(_workerKey(0));
        vm.assume(other != vm.addr(sessionKey));
        uint64 expiresAt = uint64(block.timestamp + 1 days);
        Settlement.Grant[] memory grants = _grantOf(0, sessionKey, expiresAt);
        _settle(_table(), grants, "");
        vm.prank(worker);
        s.revokeSession(other);
        require(s.grantCached(worker, vm.addr(sessionKey), expiresAt), "another key's revocation dropped the grant");
        vm.prank(worker);
        s.revokeSession(vm.addr(sessionKey));
        require(!s.grantCached(worker, vm.addr(sessionKey), expiresAt), "revoked grant still cached");
    }

    /// An EOA that signed its grant and then delegated its code (EIP-7702) still has its vote counted:
    /// the delegation is not a veto (the ERC-1271 path alone skipped it, failing the task).
    function test_delegatedVoterStillCounts() public {
        uint256 sessionKey = 0xBEEF;
        address worker = vm.addr(_workerKey(0));
        uint64 expiresAt = uint64(block.timestamp + 1 days);
        Settlement.Grant[] memory grants = _grantOf(0, sessionKey, expiresAt);
        // The EIP-7702 delegation designator (0xef0100 ‖ address): the account now has code.
        vm.etch(worker, abi.encodePacked(hex"ef0100", address(0xdead)));
        require(worker.code.length > 0, "the worker should look like a smart account");
        uint64 seq = 9;
        (address[] memory workers, bytes memory tasks) = _task(s, seq, _ids(1, 2), new uint256[](0), false);
        (bytes32 taskId, bytes32 digest) = _digest(s, seq);
        tasks[VOTES_BYTE] = bytes1(uint8(3));
        tasks = abi.encodePacked(tasks, _sig(sessionKey, s.voteHash(taskId, digest, worker)), _indexOf(workers, worker));
        _settle(workers, grants, tasks);
        require(s.owed(worker) == REWARD / 3, "the delegated voter's vote was skipped");
    }

    /// A session-key vote shown wrong by the referee slashes the whole bond (bonded and unbonding) into the pool;
    /// the same proof twice, a verdict for the voted digest, or a verdict signed by anyone else slashes nothing.
    function test_slashByVerdictOnly() public {
        uint256 sessionKey = 0xBEEF;
        address worker = vm.addr(_workerKey(0));
        vm.deal(worker, 3 ether);
        vm.prank(worker);
        s.depositBond{value: 3 ether}();
        vm.prank(worker);
        s.requestUnbond(1 ether);
        Settlement.Grant memory grant = _grantOf(0, sessionKey, uint64(block.timestamp + 1 days))[0];
        bytes32 taskId = keccak256("t");
        bytes32 lie = keccak256("lie");
        bytes32 truth = keccak256("truth");
        bytes memory vote = _sig(sessionKey, s.voteHash(taskId, lie, worker));
        bytes memory byCoordinator = _sig(COORDINATOR_KEY, s.verdictHash(taskId, truth));
        bytes memory forLie = _sig(REFEREE_KEY, s.verdictHash(taskId, lie));
        bytes memory verdict = _sig(REFEREE_KEY, s.verdictHash(taskId, truth));
        require(!_trySlash(taskId, lie, worker, vote, grant, truth, byCoordinator), "slashed on a non-referee verdict");
        require(!_trySlash(taskId, lie, worker, vote, grant, lie, forLie), "slashed on a verdict for the vote");
        // Another task's verdict does not prove this vote wrong.
        bytes memory other = _sig(REFEREE_KEY, s.verdictHash(keccak256("other"), truth));
        require(!_trySlash(taskId, lie, worker, vote, grant, truth, other), "slashed on another task's verdict");
        uint256 pool = s.pool();
        require(_trySlash(taskId, lie, worker, vote, grant, truth, verdict), "valid slash refused");
        (uint256 bonded, uint256 unbonding,) = s.bondOf(worker);
        require(bonded == 0 && unbonding == 0, "bond left after the slash");
        require(s.pool() == pool + 3 ether && s.bondsHeld() == 0, "slashed bond not in the pool");
        require(s.strikes(worker) == 1, "no strike for the slashed vote");
        require(!_trySlash(taskId, lie, worker, vote, grant, truth, verdict), "slashed twice for one vote");
    }

    /// A revoked session key's votes cannot be used to slash (a leaked key cannot frame its worker).
    function test_revokedKeyCannotSlash() public {
        uint256 sessionKey = 0xBEEF;
        address worker = vm.addr(_workerKey(1));
        vm.deal(worker, 1 ether);
        vm.prank(worker);
        s.depositBond{value: 1 ether}();
        Settlement.Grant memory grant = _grantOf(1, sessionKey, uint64(block.timestamp + 1 days))[0];
        vm.prank(worker);
        s.revokeSession(vm.addr(sessionKey));
        bytes32 taskId = keccak256("t");
        bytes memory vote = _sig(sessionKey, s.voteHash(taskId, keccak256("lie"), worker));
        bytes memory verdict = _sig(REFEREE_KEY, s.verdictHash(taskId, keccak256("truth")));
        require(
            !_trySlash(taskId, keccak256("lie"), worker, vote, grant, keccak256("truth"), verdict),
            "a revoked key's vote slashed its worker"
        );
    }

    /// Unbonding waits unbondDelay(): withdrawing earlier reverts, later pays exactly the unbonding part.
    function testFuzz_unbondDelay(uint32 wait) public {
        address worker = vm.addr(_workerKey(2));
        vm.deal(worker, 2 ether);
        vm.prank(worker);
        s.depositBond{value: 2 ether}();
        vm.prank(worker);
        s.requestUnbond(0.5 ether);
        vm.warp(block.timestamp + (wait % (4 * EPOCH)));
        (,, uint64 availableAt) = s.bondOf(worker);
        vm.prank(worker);
        try s.withdrawBond() returns (uint256 amount) {
            require(block.timestamp >= availableAt && amount == 0.5 ether, "withdrew early or the wrong amount");
        } catch {
            require(block.timestamp < availableAt, "a matured unbonding was refused");
        }
        require(availableAt == 1_000 days + s.unbondDelay(), "delay is not two epochs");
    }

    function _trySlash(
        bytes32 taskId,
        bytes32 digest,
        address worker,
        bytes memory vote,
        Settlement.Grant memory grant,
        bytes32 truth,
        bytes memory verdict
    ) internal returns (bool) {
        try s.slash(taskId, digest, worker, vote, grant, truth, verdict) {
            return true;
        } catch {
            return false;
        }
    }

    /// A sponsor's search pays its own tasks at its own reward; once closed it settles for the grace, then
    /// refuses batches and lets only its sponsor withdraw, at most what its pool holds.
    function test_searchLifecycle() public {
        bytes32 id = keccak256("a search");
        address sponsor = address(0x5A);
        vm.deal(sponsor, 2 ether);
        vm.prank(sponsor);
        s.openSearch{value: 1 ether}(id, 3 * REWARD, 100 * REWARD);
        uint256 operatorPool = s.pool();
        (address[] memory workers, bytes memory tasks) = _task(s, 1, _ids(0, 2), new uint256[](0), false);
        vm.prank(vm.addr(COORDINATOR_KEY));
        s.settle(id, workers, new Settlement.Grant[](0), tasks, "");
        (,,,, uint256 pool,) = s.searchOf(id);
        require(pool == 1 ether - 3 * REWARD, "the search's pool did not pay its task");
        require(s.pool() == operatorPool, "the operator's pool paid a search's task");
        require(s.owed(vm.addr(_workerKey(0))) == 3 * REWARD / 2, "not paid at the search's reward");

        vm.expectRevert(abi.encodeWithSelector(Settlement.NotSponsor.selector, id, address(this)));
        s.closeSearch(id);
        vm.prank(sponsor);
        s.closeSearch(id);
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(Settlement.SearchStillSettling.selector, id, block.timestamp + GRACE));
        s.withdrawSearch(id, 1);
        (workers, tasks) = _task(s, 2, _ids(2, 2), new uint256[](0), false);
        vm.prank(vm.addr(COORDINATOR_KEY));
        s.settle(id, workers, new Settlement.Grant[](0), tasks, ""); // within the grace: still paid
        vm.warp(block.timestamp + GRACE);
        (workers, tasks) = _task(s, 3, _ids(4, 2), new uint256[](0), false);
        vm.prank(vm.addr(COORDINATOR_KEY));
        vm.expectRevert(abi.encodeWithSelector(Settlement.SearchNotOpen.selector, id, block.timestamp));
        s.settle(id, workers, new Settlement.Grant[](0), tasks, "");

        (,,,, pool,) = s.searchOf(id);
        vm.expectRevert(abi.encodeWithSelector(Settlement.NotSponsor.selector, id, address(this)));
        s.withdrawSearch(id, pool);
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(Settlement.WithdrawTooLarge.selector, pool + 1, pool));
        s.withdrawSearch(id, pool + 1);
        uint256 before = sponsor.balance;
        vm.prank(sponsor);
        s.withdrawSearch(id, pool);
        require(sponsor.balance == before + pool && pool == 1 ether - 6 * REWARD, "withdrew the wrong amount");
    }
}
