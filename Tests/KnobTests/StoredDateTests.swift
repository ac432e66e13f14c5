import Foundation
import GRDB
import PropertyBased
import Testing
@testable import Store

/// The store's own date text is GRDB's, character for character, and reads back as GRDB reads it.
@Suite struct StoredDateTests {
    func grdb(_ date: Date) -> String {
        guard case .string(let text) = date.databaseValue.storage else { return "not text" }
        return text
    }

    @Test func everyDateGivesGRDBsText() async {
        // Seconds since 1970 up to year 9999 and beyond, with fractions of a millisecond either side of a digit.
        await propertyCheck(count: 20_000, input: Gen<Double>.value(in: -1e11...3e11), Gen<UInt64>.value(in: 0...999_999)) { seconds, micro in
            let date = Date(timeIntervalSince1970: seconds.rounded(.down) + Double(micro) / 1_000_000)
            #expect(StoredDate.text(date) == grdb(date), "\(date.timeIntervalSinceReferenceDate)")
        }
    }

    @Test func everyStoredTextReadsBackAsGRDBReadsIt() async {
        await propertyCheck(count: 20_000, input: Gen<Double>.value(in: -1e11...3e11), Gen<UInt64>.value(in: 0...999_999)) { seconds, micro in
            let since1970 = seconds.rounded(.down) + Double(micro) / 1_000_000
            let text = grdb(Date(timeIntervalSince1970: since1970))
            // Read directly from 1970 to 9999; before and after, by GRDB (which reads no year past 9999).
            #expect((StoredDate.parse(text) != nil) == (since1970 >= 0 && since1970 < 253_402_300_799.9995), "\(text)")
            #expect(StoredDate.date(text.databaseValue) == Date.fromDatabaseValue(text.databaseValue), "\(text)")
        }
    }

    @Test func textsOfOtherShapesAreLeftToGRDB() throws {
        // The store's own shape, read directly; the rest (days that do not exist, other layouts, numbers) as GRDB reads them.
        #expect(StoredDate.parse("2024-02-29 23:59:59.999") != nil)
        for text in ["2023-02-29 00:00:00.000", "2024-13-01 00:00:00.000", "2024-04-31 00:00:00.000", "2024-01-01 24:00:00.000",
                     "2024-01-01T00:00:00.000", "2024-01-01 00:00:00", "2024-01-01", "1969-12-31 23:59:59.999", "2024-01-01 00:00:0x.000"] {
            #expect(StoredDate.parse(text) == nil, "\(text)")
            #expect(StoredDate.date(text.databaseValue) == Date.fromDatabaseValue(text.databaseValue), "\(text)")
        }
        #expect(StoredDate.date(1_700_000_000.5.databaseValue) == Date(timeIntervalSince1970: 1_700_000_000.5))
        #expect(StoredDate.date(.null) == nil)
        // A record reads its dates the same either way.
        let row: Row = ["createdAt": "2024-03-01 12:00:00.250", "startedAt": nil, "completedAt": "2024-03-01 12:00:01"]
        #expect(try StoredDate.decode(row, "createdAt") == Date.fromDatabaseValue("2024-03-01 12:00:00.250".databaseValue))
        #expect(try StoredDate.decode(row, "startedAt") == nil)
        #expect(try StoredDate.decode(row, "completedAt") == Date.fromDatabaseValue("2024-03-01 12:00:01".databaseValue))
        let notADate: Row = ["createdAt": "soon"]
        #expect(throws: (any Error).self) { try StoredDate.decode(notADate, "createdAt") }
    }

    @Test func everyRecordReadsAndWritesItsDatesThisWay() {
        func custom(_ decoding: DatabaseDateDecodingStrategy, _ encoding: DatabaseDateEncodingStrategy) -> Bool {
            guard case .custom = decoding, case .custom(let encode) = encoding else { return false }
            let date = Date(timeIntervalSince1970: 1_700_000_000.25)
            return (encode(date)?.databaseValue).map { $0 == StoredDate.text(date).databaseValue } ?? false
        }
        #expect(custom(ExperimentRecord.databaseDateDecodingStrategy(for: "createdAt"), ExperimentRecord.databaseDateEncodingStrategy(for: "createdAt")))
        #expect(custom(TrialRecord.databaseDateDecodingStrategy(for: "createdAt"), TrialRecord.databaseDateEncodingStrategy(for: "createdAt")))
        #expect(custom(MetricRecord.databaseDateDecodingStrategy(for: "timestamp"), MetricRecord.databaseDateEncodingStrategy(for: "timestamp")))
        #expect(custom(EventRecord.databaseDateDecodingStrategy(for: "time"), EventRecord.databaseDateEncodingStrategy(for: "time")))
    }

    @Test func edgesOfDaysYearsAndMilliseconds() {
        let cases: [Double] = [0, 0.0009, 0.001, 0.9995, 86_399.999, 86_400, 951_782_400, 951_868_799.999, 1_709_164_800,
                               4_107_542_399.999, 253_402_300_799.999, 253_402_300_800, -0.001, -86_400.5, 1_796_069_272.7538548,
                               Date().timeIntervalSince1970]
        for seconds in cases {
            let date = Date(timeIntervalSince1970: seconds)
            #expect(StoredDate.text(date) == grdb(date), "\(seconds)")
        }
        for reference in [0.0, 0.0005, 0.001 - 1e-12, 1e9 + 0.0001] {
            let date = Date(timeIntervalSinceReferenceDate: reference)
            #expect(StoredDate.text(date) == grdb(date), "reference \(reference)")
        }
    }
}
