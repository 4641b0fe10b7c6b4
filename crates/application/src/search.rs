//! Quote search (the quote_search projection).
