import GRDB

/// The schema, one named migration at a time. A migration that has shipped is never edited:
/// a change is a new migration.
enum Migrations {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-initial") { db in
            try db.create(table: "experiment") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("name", .text).notNull().unique()
                t.column("specText", .text).notNull()
                t.column("specJSON", .text).notNull()
                t.column("status", .text).notNull()
                t.column("reason", .text).notNull()
                t.column("message", .text).notNull()
                t.column("seed", .integer).notNull()
                t.column("objectiveType", .text).notNull()
                t.column("objectiveMetricName", .text).notNull()
                t.column("directory", .text).notNull()
                t.column("createdAt", .datetime).notNull()
                t.column("startedAt", .datetime)
                t.column("completedAt", .datetime)
            }
            try db.create(table: "trial") { t in
                t.autoIncrementedPrimaryKey("id")
                t.belongsTo("experiment", onDelete: .cascade).notNull()
                t.column("sequence", .integer).notNull()
                t.column("name", .text).notNull().unique()
                t.column("assignments", .jsonText).notNull()
                t.column("suggesterMetadata", .jsonText).notNull()
                t.column("state", .text).notNull().indexed()
                t.column("reason", .text).notNull()
                t.column("message", .text).notNull()
                t.column("runnerHandle", .jsonText).notNull()
                t.column("logPath", .text)
                t.column("logOffset", .integer).notNull().defaults(to: 0)
                t.column("observation", .jsonText).notNull()
                t.column("objectiveValue", .double)
                t.column("exitCode", .integer)
                t.column("createdAt", .datetime).notNull()
                t.column("startedAt", .datetime)
                t.column("completedAt", .datetime)
                t.uniqueKey(["experimentId", "sequence"])
            }
            try db.create(table: "metric") { t in
                t.autoIncrementedPrimaryKey("id")
                t.belongsTo("trial", onDelete: .cascade).notNull()
                t.column("name", .text).notNull()
                t.column("value", .double)
                t.column("text", .text)
                t.column("step", .integer).notNull()
                t.column("timestamp", .datetime).notNull()
            }
            try db.create(index: "metric_on_trial_name", on: "metric", columns: ["trialId", "name"])
            try db.create(table: "event") { t in
                t.autoIncrementedPrimaryKey("id")
                t.belongsTo("experiment", onDelete: .cascade).notNull()
                t.column("time", .datetime).notNull()
                t.column("kind", .text).notNull()
                t.column("trialName", .text)
                t.column("message", .text).notNull()
            }
        }
        // A start of an experiment's controller that has not completed yet: counted before the
        // controller starts, cleared once its first trials are scheduled. A count left over from
        // earlier starts means the daemon died while starting it.
        migrator.registerMigration("v2-start-attempts") { db in
            try db.create(table: "startAttempt") { t in
                t.primaryKey("experimentId", .integer).references("experiment", onDelete: .cascade)
                t.column("count", .integer).notNull()
                t.column("lastStartedAt", .datetime).notNull()
            }
        }
        // Reads that stay flat as an experiment grows: the best trial by objective, and pages of
        // trials in one state.
        migrator.registerMigration("v3-trial-read-indexes") { db in
            try db.create(index: "trial_on_experiment_objective", on: "trial", columns: ["experimentId", "objectiveValue", "sequence"])
            try db.create(index: "trial_on_experiment_state", on: "trial", columns: ["experimentId", "state", "sequence"])
        }
        // An end decided for a running trial before it is applied (an early stop): recorded first,
        // so that a process that dies while stopping the trial leaves the decision to the next one.
        migrator.registerMigration("v4-trial-stopping") { db in
            try db.alter(table: "trial") { t in
                t.add(column: "stopping", .jsonText)
            }
        }
        // Every index a trial's start, report and end must also write costs a page of the WAL each time. These
        // three are prefixes of others (trial's experimentId of (experimentId, sequence); metric's trialId of
        // (trialId, name)) or serve only the census, which scans every trial anyway (trial's state).
        migrator.registerMigration("v5-fewer-indexes") { db in
            try db.drop(index: "trial_on_experimentId")
            try db.drop(index: "trial_on_state")
            try db.drop(index: "metric_on_trialId")
        }
        return migrator
    }
}
