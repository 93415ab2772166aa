// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

interface ISettlementClaim {
    function claim() external returns (uint256);
}

/// @notice Test-only attacker: a smart-account worker (ERC-1271 grants) whose receive() re-enters claim(),
///         and whose isValidSignature can burn all the gas it is given.
contract Reentrant {
    bytes4 private constant ERC1271_MAGIC = 0x1626ba7e;

    ISettlementClaim public immutable target;
    mapping(bytes32 hash => bool) public approved;
    uint256 public reentryAttempts;
    bool public reentrySucceeded;
    bytes public reentryError;
    bool public burnGas;

    constructor(address target_) {
        target = ISettlementClaim(target_);
    }

    /// @notice Approves an EIP-712 hash (a SessionGrant) as signed by this account.
    function approve(bytes32 hash) external {
        approved[hash] = true;
    }

    function setBurnGas(bool burn) external {
        burnGas = burn;
    }

    function isValidSignature(bytes32 hash, bytes calldata) external view returns (bytes4) {
        if (burnGas) {
            uint256 spin;
            while (gasleft() > 0) ++spin;
        }
        return approved[hash] ? ERC1271_MAGIC : bytes4(0xffffffff);
    }

    function attack() external {
        target.claim();
    }

    receive() external payable {
        if (reentryAttempts++ > 0) return;
        try target.claim() {
            reentrySucceeded = true;
        } catch (bytes memory err) {
            reentryError = err;
        }
    }
}
