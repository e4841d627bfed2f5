package reports

import "github.com/cartrelay/cartrelay/shared/domain"

func domainUTM(s string) domain.UTM { return domain.UTM{Source: s} }
