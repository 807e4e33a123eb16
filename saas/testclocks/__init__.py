"""Test clocks, as Stripe has them: simulated time for test-mode customers.

A customer created with a `test_clock_id` lives on that clock: every operation on its
subscriptions uses the clock's `frozen_time` as `now`, and advancing the clock runs everything
that became due for those subscriptions (trial ends, renewals, period-end changes and
cancellations) synchronously, through the same `advance_subscriptions` the worker runs for
real time. Test mode only.

Layering: `models` and `queries` are low-level (customers and subscriptions read them);
`services.advance_test_clock` sits on top of subscriptions, which it drives.
"""
