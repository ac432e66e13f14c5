import Store
import Testing
@testable import Knob

@Suite struct ExperimentPolicyTests {
    @Test func fillsFreeSlotsWithinTheTrialBudget() {
        var policy = ExperimentPolicy(parallelTrialCount: 3, maxTrialCount: 4, failureLimit: 2)
        #expect(policy.decide() == .launch(3))
        policy.trialsStarted(3)
        #expect(policy.decide() == .wait)
        policy.trialEnded(.succeeded, reachedGoal: false)
        #expect(policy.decide() == .launch(1))
        policy.trialsStarted(1)
        #expect(policy.decide() == .wait, "4 created: no more launches")
        policy.trialEnded(.succeeded, reachedGoal: false)
        policy.trialEnded(.killed, reachedGoal: false)
        #expect(policy.decide() == .wait)
        policy.trialEnded(.succeeded, reachedGoal: false)
        #expect(policy.decide() == .finish(.succeeded, reason: "MaxTrialsReached", message: "all 4 trials have ended"))
    }

    @Test func failuresAndMissingMetricsCountTowardTheFailureLimit() {
        var policy = ExperimentPolicy(parallelTrialCount: 1, maxTrialCount: 10, failureLimit: 2)
        policy.trialsStarted(1)
        policy.trialEnded(.failed, reachedGoal: false)
        #expect(policy.decide() == .launch(1))
        policy.trialsStarted(1)
        policy.trialEnded(.metricsUnavailable, reachedGoal: false)
        guard case .finish(.failed, "MaxFailedTrialsReached", _) = policy.decide() else {
            Issue.record("expected MaxFailedTrialsReached, got \(policy.decide())")
            return
        }
    }

    @Test func aSuggesterWaitingForResultsIsAskedAgainWhenATrialEnds() {
        var policy = ExperimentPolicy(parallelTrialCount: 3, maxTrialCount: 10, failureLimit: nil)
        policy.trialsStarted(2)
        policy.waitingForResults = true
        #expect(policy.decide() == .wait)
        policy.trialEnded(.succeeded, reachedGoal: false)
        #expect(policy.decide() == .launch(2))
    }

    @Test func goalStopAndExhaustionEndTheExperiment() {
        var goal = ExperimentPolicy(parallelTrialCount: 2, maxTrialCount: nil, failureLimit: nil)
        goal.trialsStarted(2)
        goal.trialEnded(.succeeded, reachedGoal: true)
        #expect(goal.decide() == .finish(.succeeded, reason: "GoalReached", message: "a trial reached the objective's goal"))

        var exhausted = ExperimentPolicy(parallelTrialCount: 2, maxTrialCount: nil, failureLimit: nil)
        exhausted.trialsStarted(1)
        exhausted.exhausted = true
        #expect(exhausted.decide() == .wait, "running trials finish first")
        exhausted.trialEnded(.succeeded, reachedGoal: false)
        guard case .finish(.succeeded, "SearchSpaceExhausted", _) = exhausted.decide() else {
            Issue.record("expected SearchSpaceExhausted")
            return
        }

        var stopped = ExperimentPolicy(parallelTrialCount: 2, maxTrialCount: 5, failureLimit: nil)
        stopped.stopRequested = "stopped by SIGINT"
        #expect(stopped.decide() == .finish(.stopped, reason: "StoppedByUser", message: "stopped by SIGINT"))
    }
}
