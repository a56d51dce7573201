//! Tests of the step operation list.
