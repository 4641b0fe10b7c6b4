//! Fallout cases: the worklist and its repairs (retry, skip, cancel-order).
