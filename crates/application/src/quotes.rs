//! Quotes: create, change lines and terms, price, submit, accept, revise, cancel, read.
