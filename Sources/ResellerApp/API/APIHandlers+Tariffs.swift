import Foundation
import HTTPTypes
import OpenAPIRuntime
import Pricing
import ResellerAPI
import ResellerCore
import SMSCore

/// Price lists of the three layers, their versions, and which list applies to whom.
///
/// Reading follows `PriceListRepository.visibleLists` (404 for anything else); changing a list or adding a version
/// is for its owner only (the admin for platform lists, the reseller for its retail lists; 403 for other callers
/// who can see it).
extension APIHandlers {
    package var priceLists: PriceListRepository { PriceListRepository(pool: pool) }

    package func listPriceLists(_ input: Operations.ListPriceLists.Input) async throws
        -> Operations.ListPriceLists.Output
    {
        let principal = try Access.principal()
        var validator = Validator()
        let limit = validator.limit(input.query.limit)
        let cursor = validator.uuidCursor(input.query.cursor)
        try validator.check()
        let layer = input.query.layer.flatMap { PriceLayer(rawValue: $0.rawValue) }
        let rows = try await priceLists.list(scope: principal.scope, layer: layer, after: cursor, limit: limit + 1)
        let page = Page(rows, limit: limit)
        return .ok(
            .init(
                body: .json(
                    .init(
                        items: page.items.map { Self.schema($0, for: principal) },
                        nextCursor: page.nextCursor { $0.id.apiString }))))
    }

    package func createPriceList(_ input: Operations.CreatePriceList.Input) async throws
        -> Operations.CreatePriceList.Output
    {
        let principal = try Access.require(.admin, .reseller)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        let layer = PriceLayer(rawValue: body.layer.rawValue)!
        guard layer.isPlatform == (principal.role == .admin) else {
            throw APIProblem.forbidden(
                "The admin creates upstream_cost and wholesale lists; resellers create retail lists.")
        }
        var validator = Validator()
        let name = validator.required(body.name, field: "/name", maximum: 200)
        let description = validator.text(body.description, field: "/description", maximum: 1000)
        if body.allowLoss != nil, layer != .retail { validator.fail("/allowLoss", "only retail lists have allowLoss") }
        try validator.check()
        let record = try await priceLists.create(
            layer: layer, resellerID: layer.isPlatform ? nil : principal.resellerID, name: name,
            description: description,
            allowLoss: body.allowLoss ?? false, by: AuditActor(principal))
        return .created(.init(body: .json(Self.schema(record, for: principal))))
    }

    package func getPriceList(_ input: Operations.GetPriceList.Input) async throws -> Operations.GetPriceList.Output {
        let (principal, list) = try await visiblePriceList(input.path.priceListId)
        return .ok(.init(body: .json(Self.schema(list, for: principal))))
    }

    package func updatePriceList(_ input: Operations.UpdatePriceList.Input) async throws
        -> Operations.UpdatePriceList.Output
    {
        let (principal, list) = try await ownedPriceList(input.path.priceListId)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        var validator = Validator()
        let name = validator.text(body.name, field: "/name", maximum: 200)
        let description =
            body.description == "" ? "" : validator.text(body.description, field: "/description", maximum: 1000)
        if body.allowLoss != nil, list.layer != .retail {
            validator.fail("/allowLoss", "only retail lists have allowLoss")
        }
        try validator.check()
        let record = try await priceLists.update(
            list, name: name, description: description, allowLoss: body.allowLoss, by: AuditActor(principal))
        return .ok(.init(body: .json(Self.schema(record, for: principal))))
    }

    // MARK: - Versions

    package func listPriceListVersions(_ input: Operations.ListPriceListVersions.Input) async throws
        -> Operations.ListPriceListVersions.Output
    {
        let (_, list) = try await visiblePriceList(input.path.priceListId)
        var validator = Validator()
        let limit = validator.limit(input.query.limit)
        let cursor = validator.uuidCursor(input.query.cursor)
        try validator.check()
        let rows = try await priceLists.versions(of: list, after: cursor, limit: limit + 1)
        let page = Page(rows, limit: limit)
        return .ok(
            .init(
                body: .json(
                    .init(
                        items: page.items.map { Self.schema($0, entries: nil) },
                        nextCursor: page.nextCursor { $0.id.apiString }))))
    }

    package func getPriceListVersion(_ input: Operations.GetPriceListVersion.Input) async throws
        -> Operations.GetPriceListVersion.Output
    {
        let (_, _, version) = try await visiblePriceVersion(input.path.priceListId, input.path.versionId)
        let entries = try await priceLists.entries(of: version)
        return .ok(.init(body: .json(Self.schema(version, entries: entries))))
    }

    package func exportPriceListVersion(_ input: Operations.ExportPriceListVersion.Input) async throws
        -> Operations.ExportPriceListVersion.Output
    {
        let (_, list, version) = try await visiblePriceVersion(input.path.priceListId, input.path.versionId)
        let body = HTTPBody(
            PriceEntryCSVStream(repository: priceLists, version: version), length: .unknown, iterationBehavior: .single)
        return .ok(
            .init(
                headers: .init(
                    contentDisposition:
                        "attachment; filename=\"price-list-\(list.id.apiString)-\(version.id.apiString).csv\""),
                body: .csv(body)))
    }

    package func createPriceListVersion(_ input: Operations.CreatePriceListVersion.Input) async throws
        -> Operations.CreatePriceListVersion.Output
    {
        let (principal, list) = try await ownedPriceList(input.path.priceListId)
        var collector = PriceEntryCollector()
        let effectiveFrom: Date?
        let note: String?
        let noteField: String
        let effectiveFromField: String
        switch input.body {
        case .json(let body):
            for (name, given) in [
                ("effectiveFrom", input.query.effectiveFrom != nil), ("note", input.query.note != nil),
            ] where given {
                collector.fail(name, "is for text/csv bodies; give /\(name) in the JSON body")
            }
            (effectiveFrom, note, noteField, effectiveFromField) = (
                body.effectiveFrom, body.note, "/note", "/effectiveFrom"
            )
            for (index, entry) in body.entries.enumerated() {
                collector.add(
                    prefix: entry.prefix, price: entry.price, status: entry.status?.rawValue,
                    source: .json(index: index))
            }
        case .csv(let body):
            (effectiveFrom, note, noteField, effectiveFromField) = (
                input.query.effectiveFrom, input.query.note, "note", "effectiveFrom"
            )
            var bytes: [UInt8] = []
            for try await chunk in body {
                guard bytes.count + chunk.count <= PriceListCSV.maximumBytes else {
                    throw APIProblem(
                        .contentTooLarge, code: "payload_too_large",
                        detail: "A price list file is at most \(PriceListCSV.maximumBytes >> 20) MiB.")
                }
                bytes.append(contentsOf: chunk)
            }
            PriceListCSV.read(bytes, into: &collector)
        }
        var validator = Validator()
        let validNote = validator.text(note, field: noteField, maximum: 1000)
        for error in validator.errors { collector.fail(error.field, error.message) }
        let entries = try collector.result(emptyField: input.body.isCSV ? "file" : "/entries")

        switch try await priceLists.createVersion(
            of: list, effectiveFrom: effectiveFrom, note: validNote, entries: entries, by: AuditActor(principal))
        {
        case .created(let version, let losses):
            let sources = Self.sources(entries)
            let warnings = losses.map { loss in
                Components.Schemas.PriceWarning(
                    kind: .loss, prefix: loss.retailPrefix,
                    field: sources[loss.retailPrefix]?.field("price") ?? loss.retailPrefix,
                    retailPrice: loss.retailPrice.description, wholesalePrefix: loss.wholesalePrefix,
                    wholesalePrice: loss.wholesalePrice.description,
                    message: Self.lossMessage(loss) + "; accepted because the list allows loss")
            }
            return .created(.init(body: .json(.init(version: Self.schema(version, entries: nil), warnings: warnings))))
        case .refusedForLoss(let losses):
            let sources = Self.sources(entries)
            throw APIProblem.validation(
                losses.map { loss in
                    .init(
                        field: sources[loss.retailPrefix]?.field("price") ?? loss.retailPrefix,
                        message: Self.lossMessage(loss) + "; the list does not allow loss (allowLoss)")
                })
        case .effectiveInThePast(let now):
            throw APIProblem.validation([
                .init(
                    field: effectiveFromField,
                    message:
                        "must not be in the past (it is \(now.formatted(.iso8601)) now); leave it out to take effect now"
                )
            ])
        case .effectiveFromTaken:
            throw APIProblem.conflict("The list already has a version taking effect at exactly that instant.")
        }
    }

    private static func sources(_ entries: [PriceEntryInput]) -> [String: PriceEntrySource] {
        Dictionary(entries.map { ($0.prefix, $0.source) }, uniquingKeysWith: { first, _ in first })
    }

    private static func lossMessage(_ loss: PriceLoss) -> String {
        let country = CallingCode.match(loss.wholesalePrefix).map { " (\($0.name))" } ?? ""
        return
            "\(loss.retailPrice) is below the wholesale price \(loss.wholesalePrice) for prefix \(loss.wholesalePrefix)\(country)"
    }

    // MARK: - Defaults and assignments

    package func getPriceDefaults(_ input: Operations.GetPriceDefaults.Input) async throws
        -> Operations.GetPriceDefaults.Output
    {
        _ = try Access.require(.admin)
        return .ok(.init(body: .json(Self.schema(try await priceLists.defaults()))))
    }

    package func updatePriceDefaults(_ input: Operations.UpdatePriceDefaults.Input) async throws
        -> Operations.UpdatePriceDefaults.Output
    {
        let principal = try Access.require(.admin)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        var validator = Validator()
        let upstreamCost = try await assignableList(
            body.upstreamCostPriceListId, field: "/upstreamCostPriceListId", validator: &validator
        ) {
            $0.layer == .upstreamCost ? nil : "is not an upstream_cost price list"
        }
        let wholesale = try await assignableList(
            body.wholesalePriceListId, field: "/wholesalePriceListId", validator: &validator
        ) {
            $0.layer == .wholesale ? nil : "is not a wholesale price list"
        }
        if body.upstreamCostPriceListId == nil, body.wholesalePriceListId == nil {
            validator.fail("/", "give upstreamCostPriceListId, wholesalePriceListId or both")
        }
        try validator.check()
        let record = try await priceLists.updateDefaults(
            upstreamCost: upstreamCost?.id, wholesale: wholesale?.id, by: AuditActor(principal))
        return .ok(.init(body: .json(Self.schema(record))))
    }

    package func getResellerPricing(_ input: Operations.GetResellerPricing.Input) async throws
        -> Operations.GetResellerPricing.Output
    {
        let id = try pathID(input.path.resellerId, "reseller")
        _ = try Access.requireReseller(id, roles: .admin, .reseller)
        guard let record = try await priceLists.resellerPricing(resellerID: id) else {
            throw APIProblem.notFound("No reseller \(id.apiString).")
        }
        return .ok(.init(body: .json(Self.schema(record))))
    }

    package func assignWholesalePriceList(_ input: Operations.AssignWholesalePriceList.Input) async throws
        -> Operations.AssignWholesalePriceList.Output
    {
        let id = try pathID(input.path.resellerId, "reseller")
        let principal = try Access.requireReseller(id, roles: .admin)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        guard try await resellers.find(id: id) != nil else { throw APIProblem.notFound("No reseller \(id.apiString).") }
        var validator = Validator()
        let list = try await assignableList(body.priceListId, field: "/priceListId", validator: &validator) {
            $0.layer == .wholesale ? nil : "is not a wholesale price list"
        }
        try validator.check()
        let record = try await priceLists.assignWholesale(
            resellerID: id, priceListID: list!.id, by: AuditActor(principal))
        return .ok(.init(body: .json(Self.schema(record))))
    }

    package func unassignWholesalePriceList(_ input: Operations.UnassignWholesalePriceList.Input) async throws
        -> Operations.UnassignWholesalePriceList.Output
    {
        let id = try pathID(input.path.resellerId, "reseller")
        let principal = try Access.requireReseller(id, roles: .admin)
        guard try await resellers.find(id: id) != nil else { throw APIProblem.notFound("No reseller \(id.apiString).") }
        let record = try await priceLists.assignWholesale(resellerID: id, priceListID: nil, by: AuditActor(principal))
        return .ok(.init(body: .json(Self.schema(record))))
    }

    package func setDefaultRetailPriceList(_ input: Operations.SetDefaultRetailPriceList.Input) async throws
        -> Operations.SetDefaultRetailPriceList.Output
    {
        let id = try pathID(input.path.resellerId, "reseller")
        let principal = try Access.requireReseller(id, roles: .reseller)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        var validator = Validator()
        let list = try await assignableList(body.priceListId, field: "/priceListId", validator: &validator) {
            $0.layer == .retail && $0.resellerID == id ? nil : "is not one of your retail price lists"
        }
        try validator.check()
        let record = try await priceLists.setDefaultRetail(
            resellerID: id, priceListID: list!.id, by: AuditActor(principal))
        return .ok(.init(body: .json(Self.schema(record))))
    }

    package func clearDefaultRetailPriceList(_ input: Operations.ClearDefaultRetailPriceList.Input) async throws
        -> Operations.ClearDefaultRetailPriceList.Output
    {
        let id = try pathID(input.path.resellerId, "reseller")
        let principal = try Access.requireReseller(id, roles: .reseller)
        let record = try await priceLists.setDefaultRetail(resellerID: id, priceListID: nil, by: AuditActor(principal))
        return .ok(.init(body: .json(Self.schema(record))))
    }

    package func getSubAccountPricing(_ input: Operations.GetSubAccountPricing.Input) async throws
        -> Operations.GetSubAccountPricing.Output
    {
        let (_, account) = try await findSubAccount(input.path.subAccountId)
        guard let record = try await priceLists.subAccountPricing(subAccountID: account.id) else {
            throw APIProblem.notFound("No sub-account \(account.id.apiString).")
        }
        return .ok(.init(body: .json(Self.schema(record))))
    }

    package func assignRetailPriceList(_ input: Operations.AssignRetailPriceList.Input) async throws
        -> Operations.AssignRetailPriceList.Output
    {
        let (principal, account) = try await visibleSubAccount(input.path.subAccountId)
        guard case .json(let body) = input.body else { throw APIProblem.badRequest("JSON body expected") }
        var validator = Validator()
        let list = try await assignableList(body.priceListId, field: "/priceListId", validator: &validator) {
            $0.layer == .retail && $0.resellerID == account.resellerID ? nil : "is not one of your retail price lists"
        }
        try validator.check()
        let record = try await priceLists.assignRetail(
            resellerID: account.resellerID, subAccountID: account.id, priceListID: list!.id, by: AuditActor(principal))
        return .ok(.init(body: .json(Self.schema(record))))
    }

    package func unassignRetailPriceList(_ input: Operations.UnassignRetailPriceList.Input) async throws
        -> Operations.UnassignRetailPriceList.Output
    {
        let (principal, account) = try await visibleSubAccount(input.path.subAccountId)
        let record = try await priceLists.assignRetail(
            resellerID: account.resellerID, subAccountID: account.id, priceListID: nil, by: AuditActor(principal))
        return .ok(.init(body: .json(Self.schema(record))))
    }

    // MARK: - Lookups

    /// The list a path names if the caller may read it (404 otherwise, also for another tenant's).
    package func visiblePriceList(_ pathID: String) async throws -> (Principal, PriceListRecord) {
        let principal = try Access.principal()
        let id = try self.pathID(pathID, "price list")
        guard let list = try await priceLists.find(id: id, scope: principal.scope) else {
            throw APIProblem.notFound("No price list \(id.apiString).")
        }
        return (principal, list)
    }

    /// The list a path names if the caller owns it: 404 unless it can read it, then 403 unless it is the owner.
    package func ownedPriceList(_ pathID: String) async throws -> (Principal, PriceListRecord) {
        let (principal, list) = try await visiblePriceList(pathID)
        let owner =
            list.layer.isPlatform
            ? principal.role == .admin : principal.role == .reseller && principal.resellerID == list.resellerID
        guard owner else {
            throw APIProblem.forbidden(
                list.layer.isPlatform
                    ? "Only the admin changes \(list.layer.rawValue) price lists."
                    : "Only the reseller that owns a retail price list changes it.")
        }
        return (principal, list)
    }

    /// A version of a readable list (404 when either is not there for the caller).
    package func visiblePriceVersion(_ listPathID: String, _ versionPathID: String) async throws -> (
        Principal, PriceListRecord, PriceVersionRecord
    ) {
        let (principal, list) = try await visiblePriceList(listPathID)
        let id = try pathID(versionPathID, "price list version")
        guard let version = try await priceLists.version(id: id, of: list) else {
            throw APIProblem.notFound("No version \(id.apiString) of price list \(list.id.apiString).")
        }
        return (principal, list, version)
    }

    /// A list named in a body for an assignment: nil when not given; a field error when it is not a UUID, not a list
    /// the caller can read, or `problem` says it is the wrong kind.
    private func assignableList(
        _ text: String?, field: String, validator: inout Validator, problem: (PriceListRecord) -> String?
    ) async throws -> PriceListRecord? {
        guard let text else { return nil }
        let principal = try Access.principal()
        guard let id = UUID(uuidString: text), let list = try await priceLists.find(id: id, scope: principal.scope)
        else {
            validator.fail(field, "is not a price list")
            return nil
        }
        if let message = problem(list) {
            validator.fail(field, message)
            return nil
        }
        return list
    }

    // MARK: - Schemas

    package static func schema(_ list: PriceListRecord, for principal: Principal) -> Components.Schemas.PriceList {
        .init(
            id: list.id.apiString, layer: .init(rawValue: list.layer.rawValue)!, resellerId: list.resellerID?.apiString,
            name: list.name,
            description: list.description,
            // A reseller's margin policy is its own business and the admin's, not its customers'.
            allowLoss: list.layer == .retail && principal.role != .subAccount ? list.allowLoss : nil,
            createdBy: list.createdBy, createdAt: list.createdAt, updatedAt: list.updatedAt,
            versionCount: Int32(list.versionCount),
            currentVersionId: list.currentVersionID?.apiString, currentEffectiveFrom: list.currentEffectiveFrom,
            nextEffectiveFrom: list.nextEffectiveFrom)
    }

    package static func schema(_ version: PriceVersionRecord, entries: [PriceEntryRecord]?)
        -> Components.Schemas.PriceListVersion
    {
        .init(
            id: version.id.apiString, priceListId: version.priceListID.apiString,
            layer: .init(rawValue: version.layer.rawValue)!,
            effectiveFrom: version.effectiveFrom, state: .init(rawValue: version.state.rawValue)!,
            entryCount: Int32(version.entryCount),
            note: version.note, createdBy: version.createdBy, createdAt: version.createdAt,
            entries: entries?.map { entry in
                .init(
                    prefix: entry.prefix, price: entry.price?.description,
                    status: .init(rawValue: entry.status.rawValue)!,
                    // Prefixes were checked against the calling-code table when they were stored.
                    // Every stored prefix matched a calling code when it was written; should the table ever lose
                    // one, old versions still read (with an honest placeholder) instead of trapping.
                    country: CallingCode.match(entry.prefix).map(Self.schema)
                        ?? .init(callingCode: entry.prefix, regions: [], name: "unknown calling code"))
            })
    }

    package static func schema(_ country: CallingCode) -> Components.Schemas.Country {
        .init(callingCode: country.code, regions: country.regions, name: country.name)
    }

    package static func schema(_ defaults: PriceDefaultsRecord) -> Components.Schemas.PriceDefaults {
        .init(
            upstreamCostPriceListId: defaults.upstreamCostPriceListID?.apiString,
            wholesalePriceListId: defaults.wholesalePriceListID?.apiString)
    }

    package static func schema(_ applied: AppliedPriceListRecord) -> Components.Schemas.AppliedPriceList {
        .init(
            source: .init(rawValue: applied.source.rawValue)!, priceListId: applied.priceListID?.apiString,
            currentVersionId: applied.currentVersionID?.apiString, currentEffectiveFrom: applied.currentEffectiveFrom)
    }

    package static func schema(_ pricing: ResellerPricingRecord) -> Components.Schemas.ResellerPricing {
        .init(
            resellerId: pricing.resellerID.apiString, wholesale: schema(pricing.wholesale),
            defaultRetail: schema(pricing.defaultRetail))
    }

    package static func schema(_ pricing: SubAccountPricingRecord) -> Components.Schemas.SubAccountPricing {
        .init(
            subAccountId: pricing.subAccountID.apiString, resellerId: pricing.resellerID.apiString,
            retail: schema(pricing.retail))
    }
}

extension Operations.CreatePriceListVersion.Input.Body {
    package var isCSV: Bool {
        if case .csv = self { return true }
        return false
    }
}

/// A version's entries as CSV, read from the database a page at a time as the client takes them: memory stays
/// constant whatever the size (entries never change, so the pages are consistent).
package struct PriceEntryCSVStream: AsyncSequence, Sendable {
    package typealias Element = ArraySlice<UInt8>
    package static let pageSize = 5_000

    package let repository: PriceListRepository
    package let version: PriceVersionRecord

    package struct AsyncIterator: AsyncIteratorProtocol {
        package let repository: PriceListRepository
        package let version: PriceVersionRecord
        package var headerSent = false
        package var after: String?
        package var finished = false

        package mutating func next() async throws -> ArraySlice<UInt8>? {
            if !headerSent {
                headerSent = true
                return ArraySlice((PriceListCSV.header + "\n").utf8)
            }
            if finished { return nil }
            let page = try await repository.entries(of: version, after: after, limit: PriceEntryCSVStream.pageSize)
            finished = page.count < PriceEntryCSVStream.pageSize
            guard let last = page.last else { return nil }
            after = last.prefix
            var text = ""
            for entry in page {
                text += PriceListCSV.line(prefix: entry.prefix, price: entry.price, status: entry.status)
            }
            return ArraySlice(text.utf8)
        }
    }

    package func makeAsyncIterator() -> AsyncIterator { AsyncIterator(repository: repository, version: version) }
}
