import Foundation
import GRDB
import PropertyBased
import Testing
@testable import Store

/// The store's own date text is GRDB's, character for character.
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
