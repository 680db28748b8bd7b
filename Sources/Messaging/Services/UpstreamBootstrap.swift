import Foundation
import Logging
import PostgresLibpq
import ResellerCore

/// Start-up work on upstream connections, after migrations and before the server accepts requests:
///
/// 1. with `UPSTREAM_CREDENTIALS_KEY` set, passwords still stored in the clear are encrypted;
/// 2. when no connection exists at all, the configured upstream (the built-in simulator with its sandbox account, or
///    `UPSTREAM_1601_URL` with `UPSTREAM_1601_USERNAME`/`UPSTREAM_1601_PASSWORD`) becomes the default connection —
///    once: afterwards connections are managed through the API and the configuration is not consulted again;
/// 3. what cannot work is said loudly: no connection or no default, passwords this instance cannot decrypt, a
///    configured upstream that differs from the default connection.
///
/// Failures are logged, never fatal: the API serves without upstream connections, messages just stay queued.
package enum UpstreamBootstrap {
    /// `configured` is the configured upstream as a connection to create when none exists; without a password (an
    /// `UPSTREAM_1601_URL` without credentials) none is created.
    package static func run(
        repository: UpstreamConnectionRepository, configured: UpstreamConnectionSettings?, logger: Logger
    ) async {
        do {
            try await runThrowing(repository: repository, configured: configured, logger: logger)
        } catch let error as PostgresError where error.sqlState == "42P01" {
            logger.error(
                "upstream connections are not in the database schema yet: run `sms-reseller migrate` (or serve --migrate)"
            )
        } catch {
            logger.error("upstream connection start-up checks failed", metadata: ["error": "\(error)"])
        }
    }

    package static func runThrowing(
        repository: UpstreamConnectionRepository, configured: UpstreamConnectionSettings?, logger: Logger
    ) async throws {
        if repository.cipher.encrypts {
            for name in try await repository.sealPlaintextPasswords() {
                logger.notice(
                    "upstream connection password encrypted with UPSTREAM_CREDENTIALS_KEY",
                    metadata: ["connection": "\(name)"])
            }
        }
        if let configured, configured.password != nil, let created = try await repository.bootstrapDefault(configured) {
            let line = String(repeating: "!", count: 78)
            logger.warning("\(line)")
            logger.warning(
                "!! NO UPSTREAM CONNECTION EXISTED: created the DEFAULT upstream connection '\(created.name)'")
            logger.warning("!! \(created.baseURL) as '\(created.username)' (id \(created.id.apiString))")
            logger.warning("!! From now on upstream connections are managed through the API (/upstream-connections);")
            logger.warning("!! UPSTREAM_1601_URL and its credentials are only read again when no connection exists.")
            logger.warning("\(line)")
        }
        let connections = try await repository.allConnections()
        if connections.isEmpty {
            logger.warning(
                "NO UPSTREAM CONNECTION: messages stay queued until an admin creates one (POST /upstream-connections), or set UPSTREAM_1601_USERNAME and UPSTREAM_1601_PASSWORD with UPSTREAM_1601_URL"
            )
            return
        }
        for connection in connections {
            do {
                _ = try connection.credentials()
            } catch {
                logger.error(
                    "upstream connection password cannot be read: nothing can be sent through it from this instance",
                    metadata: ["connection": "\(connection.record.name)", "reason": "\(error)"])
            }
            if connection.isPaused {
                logger.warning(
                    "upstream connection is paused",
                    metadata: [
                        "connection": "\(connection.record.name)", "reason": "\(connection.record.pauseReason ?? "")",
                        "since": "\(connection.record.pausedAt.map(APIDates.string(from:)) ?? "")",
                    ])
            }
        }
        if !repository.cipher.encrypts,
            connections.contains(where: { !UpstreamCredentialCipher.isSealed($0.storedPassword) })
        {
            logger.warning(
                "upstream connection passwords are stored unencrypted in the database; set UPSTREAM_CREDENTIALS_KEY to encrypt them"
            )
        }
        guard let current = connections.first(where: \.record.isDefault) else {
            logger.warning(
                "no default upstream connection: resellers without a connection of their own have their messages kept queued"
            )
            return
        }
        logger.info(
            "default upstream connection",
            metadata: [
                "connection": "\(current.record.name)", "url": "\(current.record.baseURL)",
                "status": "\(current.record.status.rawValue)",
            ])
        if let configured, configured.baseURL != current.record.baseURL {
            logger.notice(
                "the configured upstream is not the default connection's; the default connection is used",
                metadata: [
                    "configured": "\(configured.baseURL)", "default": "\(current.record.baseURL)",
                    "connection": "\(current.record.name)",
                ])
        }
    }
}
