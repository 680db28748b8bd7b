/// An ITU-T E.164 country calling code (or a more specific prefix inside a shared code, such as 1-876 Jamaica
/// inside the North American Numbering Plan), with the ISO 3166-1 regions it serves.
public struct CallingCode: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The prefix digits, e.g. `"31"`, `"1876"`.
    public let code: String
    /// ISO 3166-1 alpha-2 codes of the regions behind the prefix; empty for non-geographic codes (800, 882, …).
    /// Three are not officially assigned ISO codes but are what libphonenumber and CLDR use: `AC` (Ascension),
    /// `TA` (Tristan da Cunha), both exceptionally reserved, and `XK` (Kosovo), user-assigned.
    public let regions: [String]
    /// An English name for people.
    public let name: String

    /// Whether the code belongs to a country or territory (not a global service such as +800 or +882).
    public var isGeographic: Bool { !regions.isEmpty }

    public var description: String { "+\(code) \(name)" }

    /// The longest prefix of `digits` that is an assigned calling code, or `nil`.
    public static func match(_ digits: some StringProtocol) -> CallingCode? {
        var length = min(digits.count, longestCode)
        while length > 0 {
            if let found = byCode[String(digits.prefix(length))] { return found }
            length -= 1
        }
        return nil
    }

    /// The entry for exactly `code`, or `nil`.
    public static func lookup(_ code: String) -> CallingCode? { byCode[code] }

    /// Every entry serving the ISO region `region` (case-insensitive), e.g. `"JM"` → 1-876 and 1-658.
    public static func codes(forRegion region: String) -> [CallingCode] {
        let region = region.uppercased()
        return all.filter { $0.regions.contains(region) }
    }

    /// The complete table, sorted by code as text (so each sub-prefix follows its country code: 1, 1242, …, 20).
    public static let all: [CallingCode] = table.split(separator: "\n").map { line in
        let fields = line.split(separator: "|", omittingEmptySubsequences: false)
        return CallingCode(
            code: String(fields[0]),
            regions: fields[1].split(separator: ",").map(String.init),
            name: String(fields[2])
        )
    }

    static let byCode: [String: CallingCode] = Dictionary(uniqueKeysWithValues: all.map { ($0.code, $0) })
    static let longestCode = all.map(\.code.count).max() ?? 0

    /// code|regions|name — every ITU-T E.164 assigned country code (spare and merely reserved codes such as 210, 259,
    /// 28x, 384, 422, 671, 801–807, 875–877, 879, 969, 978, 990 and 999 are absent on purpose), plus the well-known
    /// sub-prefixes of shared codes. National ranges inside a code (a UK mobile range such as 447…, say) are not
    /// listed: they resolve to their country code.
    private static let table = """
        1|US,CA|United States, Canada
        1242|BS|Bahamas
        1246|BB|Barbados
        1264|AI|Anguilla
        1268|AG|Antigua and Barbuda
        1284|VG|British Virgin Islands
        1340|VI|United States Virgin Islands
        1345|KY|Cayman Islands
        1441|BM|Bermuda
        1473|GD|Grenada
        1649|TC|Turks and Caicos Islands
        1658|JM|Jamaica
        1664|MS|Montserrat
        1670|MP|Northern Mariana Islands
        1671|GU|Guam
        1684|AS|American Samoa
        1721|SX|Sint Maarten
        1758|LC|Saint Lucia
        1767|DM|Dominica
        1784|VC|Saint Vincent and the Grenadines
        1787|PR|Puerto Rico
        1809|DO|Dominican Republic
        1829|DO|Dominican Republic
        1849|DO|Dominican Republic
        1868|TT|Trinidad and Tobago
        1869|KN|Saint Kitts and Nevis
        1876|JM|Jamaica
        1939|PR|Puerto Rico
        20|EG|Egypt
        211|SS|South Sudan
        212|MA,EH|Morocco
        213|DZ|Algeria
        216|TN|Tunisia
        218|LY|Libya
        220|GM|Gambia
        221|SN|Senegal
        222|MR|Mauritania
        223|ML|Mali
        224|GN|Guinea
        225|CI|Côte d'Ivoire
        226|BF|Burkina Faso
        227|NE|Niger
        228|TG|Togo
        229|BJ|Benin
        230|MU|Mauritius
        231|LR|Liberia
        232|SL|Sierra Leone
        233|GH|Ghana
        234|NG|Nigeria
        235|TD|Chad
        236|CF|Central African Republic
        237|CM|Cameroon
        238|CV|Cape Verde
        239|ST|São Tomé and Príncipe
        240|GQ|Equatorial Guinea
        241|GA|Gabon
        242|CG|Congo
        243|CD|Democratic Republic of the Congo
        244|AO|Angola
        245|GW|Guinea-Bissau
        246|IO|Diego Garcia
        247|AC|Ascension Island
        248|SC|Seychelles
        249|SD|Sudan
        250|RW|Rwanda
        251|ET|Ethiopia
        252|SO|Somalia
        253|DJ|Djibouti
        254|KE|Kenya
        255|TZ|Tanzania
        256|UG|Uganda
        257|BI|Burundi
        258|MZ|Mozambique
        260|ZM|Zambia
        261|MG|Madagascar
        262|RE,YT|Réunion, Mayotte
        263|ZW|Zimbabwe
        264|NA|Namibia
        265|MW|Malawi
        266|LS|Lesotho
        267|BW|Botswana
        268|SZ|Eswatini
        269|KM|Comoros
        27|ZA|South Africa
        290|SH,TA|Saint Helena, Tristan da Cunha
        291|ER|Eritrea
        297|AW|Aruba
        298|FO|Faroe Islands
        299|GL|Greenland
        30|GR|Greece
        31|NL|Netherlands
        32|BE|Belgium
        33|FR|France
        34|ES|Spain
        350|GI|Gibraltar
        351|PT|Portugal
        352|LU|Luxembourg
        353|IE|Ireland
        354|IS|Iceland
        355|AL|Albania
        356|MT|Malta
        357|CY|Cyprus
        358|FI|Finland
        35818|AX|Åland Islands
        359|BG|Bulgaria
        36|HU|Hungary
        370|LT|Lithuania
        371|LV|Latvia
        372|EE|Estonia
        373|MD|Moldova
        374|AM|Armenia
        375|BY|Belarus
        376|AD|Andorra
        377|MC|Monaco
        378|SM|San Marino
        379|VA|Vatican City
        380|UA|Ukraine
        381|RS|Serbia
        382|ME|Montenegro
        383|XK|Kosovo
        385|HR|Croatia
        386|SI|Slovenia
        387|BA|Bosnia and Herzegovina
        388||Group of countries, shared code
        389|MK|North Macedonia
        39|IT|Italy
        3906698|VA|Vatican City
        40|RO|Romania
        41|CH|Switzerland
        420|CZ|Czech Republic
        421|SK|Slovakia
        423|LI|Liechtenstein
        43|AT|Austria
        44|GB|United Kingdom
        441481|GG|Guernsey
        441534|JE|Jersey
        441624|IM|Isle of Man
        45|DK|Denmark
        46|SE|Sweden
        47|NO|Norway
        4779|SJ|Svalbard and Jan Mayen
        48|PL|Poland
        49|DE|Germany
        500|FK|Falkland Islands
        501|BZ|Belize
        502|GT|Guatemala
        503|SV|El Salvador
        504|HN|Honduras
        505|NI|Nicaragua
        506|CR|Costa Rica
        507|PA|Panama
        508|PM|Saint Pierre and Miquelon
        509|HT|Haiti
        51|PE|Peru
        52|MX|Mexico
        53|CU|Cuba
        54|AR|Argentina
        55|BR|Brazil
        56|CL|Chile
        57|CO|Colombia
        58|VE|Venezuela
        590|GP,BL,MF|Guadeloupe, Saint Barthélemy, Saint Martin
        591|BO|Bolivia
        592|GY|Guyana
        593|EC|Ecuador
        594|GF|French Guiana
        595|PY|Paraguay
        596|MQ|Martinique
        597|SR|Suriname
        598|UY|Uruguay
        599|CW,BQ|Curaçao, Caribbean Netherlands
        5993|BQ|Sint Eustatius
        5994|BQ|Saba
        5997|BQ|Bonaire
        5999|CW|Curaçao
        60|MY|Malaysia
        61|AU|Australia
        6189162|CC|Cocos (Keeling) Islands
        6189164|CX|Christmas Island
        62|ID|Indonesia
        63|PH|Philippines
        64|NZ|New Zealand
        65|SG|Singapore
        66|TH|Thailand
        670|TL|Timor-Leste
        672|NF,AQ|Norfolk Island, Australian Antarctic Territory
        673|BN|Brunei
        674|NR|Nauru
        675|PG|Papua New Guinea
        676|TO|Tonga
        677|SB|Solomon Islands
        678|VU|Vanuatu
        679|FJ|Fiji
        680|PW|Palau
        681|WF|Wallis and Futuna
        682|CK|Cook Islands
        683|NU|Niue
        685|WS|Samoa
        686|KI|Kiribati
        687|NC|New Caledonia
        688|TV|Tuvalu
        689|PF|French Polynesia
        690|TK|Tokelau
        691|FM|Micronesia
        692|MH|Marshall Islands
        7|RU|Russia
        76|KZ|Kazakhstan
        77|KZ|Kazakhstan
        800||International Freephone Service
        808||International Shared Cost Service
        81|JP|Japan
        82|KR|South Korea
        84|VN|Vietnam
        850|KP|North Korea
        852|HK|Hong Kong
        853|MO|Macau
        855|KH|Cambodia
        856|LA|Laos
        86|CN|China
        870||Inmarsat
        878||Universal Personal Telecommunications
        880|BD|Bangladesh
        881||Global Mobile Satellite System
        882||International Networks
        883||International Networks
        886|TW|Taiwan
        888||Telecommunications for Disaster Relief
        90|TR|Turkey
        91|IN|India
        92|PK|Pakistan
        93|AF|Afghanistan
        94|LK|Sri Lanka
        95|MM|Myanmar
        960|MV|Maldives
        961|LB|Lebanon
        962|JO|Jordan
        963|SY|Syria
        964|IQ|Iraq
        965|KW|Kuwait
        966|SA|Saudi Arabia
        967|YE|Yemen
        968|OM|Oman
        970|PS|Palestine
        971|AE|United Arab Emirates
        972|IL|Israel
        973|BH|Bahrain
        974|QA|Qatar
        975|BT|Bhutan
        976|MN|Mongolia
        977|NP|Nepal
        979||International Premium Rate Service
        98|IR|Iran
        991||International Telecommunications Public Correspondence Service
        992|TJ|Tajikistan
        993|TM|Turkmenistan
        994|AZ|Azerbaijan
        995|GE|Georgia
        996|KG|Kyrgyzstan
        998|UZ|Uzbekistan
        """
}
