//! Executing an order's plan: the fulfillment process's internal jobs (task done and its
//! dependants released, fallout opened, order completed).
