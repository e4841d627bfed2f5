// Package iterable is cartrelay's Iterable destination: it turns facts into calls to Iterable's
// REST API (users, commerce, events, lists), runs dry without an API key, paces every endpoint
// through limiters shared in the table, and keeps the waits of abandoned-cart reminders and
// review requests as timers (shared/timers) whose follow-up facts come back through the
// forwarder. It also serves the page-view endpoint (Tracker). docs/iterable.md explains the choices.
package iterable
