import Foundation
import Testing
@testable import Knob

@Suite struct OnceValueTests {
    @Test func waitersResumeWhenAnotherThreadSetsTheValueAndTheFirstValueIsKept() async {
        let once = OnceValue<Int>()
        Thread.detachNewThread {
            usleep(20_000)
            once.set(1)
            once.set(2)
        }
        async let first = once.wait()
        async let second = once.wait()
        #expect(await [first, second] == [1, 1])
        #expect(await once.wait() == 1, "a wait after the value is set returns it at once")
    }

    @Test func aBoundedWaitEndsAtItsLimitWithoutAValueAndEarlyWithOne() async {
        let once = OnceValue<Int>()
        let clock = ContinuousClock()
        var result: Int?
        let waited = await clock.measure { result = await once.wait(upTo: .milliseconds(50)) }
        #expect(result == nil && waited >= .milliseconds(50))
        Thread.detachNewThread {
            usleep(10_000)
            once.set(7)
        }
        let early = await clock.measure { result = await once.wait(upTo: .seconds(30)) }
        #expect(result == 7 && early < .seconds(10), "the bounded wait ended when the value came, not at its limit")
    }

    @Test func aCancelledWaitReturnsNil() async {
        let once = OnceValue<Int>()
        let waiter = Task { await once.wait() }
        try? await Task.sleep(for: .milliseconds(20))
        waiter.cancel()
        #expect(await waiter.value == nil)
        once.set(3)
        #expect(once.value == 3)
    }
}
