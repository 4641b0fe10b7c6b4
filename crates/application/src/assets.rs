//! Assets: the customer's installed base.
