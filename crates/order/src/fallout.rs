//! Fallout cases: the worklist of plan tasks that failed permanently or exhausted their retries
//! (opened by [`crate::execution`]), and their repairs.
