extension PostgresError {
    /// The SQLSTATEs this code acts on, by PostgreSQL's condition names (its documentation's
    /// appendix "PostgreSQL Error Codes").
    public enum SQLState {
        public static let foreignKeyViolation = "23503"
        public static let uniqueViolation = "23505"
        /// A row outside every partition's bounds, or a CHECK constraint.
        public static let checkViolation = "23514"
        public static let serializationFailure = "40001"
        public static let deadlockDetected = "40P01"
        public static let insufficientPrivilege = "42501"
        public static let tooManyConnections = "53300"
        /// `lock_timeout` passed while waiting for a lock.
        public static let lockNotAvailable = "55P03"
        /// `statement_timeout` passed (or the statement was cancelled).
        public static let queryCanceled = "57014"
        public static let adminShutdown = "57P01"
        public static let crashShutdown = "57P02"
        public static let cannotConnectNow = "57P03"
    }
}
