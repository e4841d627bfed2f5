package domain

// Money is an exact amount in minor units (cents for USD, yen for JPY) of one ISO 4217
// currency. It is never a float. Its JSON form is {"amount":"129.90","currency":"USD"}, the
// operator-facing convention (a decimal string beside its currency code).
type Money struct {
	Minor    int64
	Currency string
}
