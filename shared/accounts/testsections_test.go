package accounts

// crm and mail stand in for destinations' sections, which each destination package declares
// for itself (shared/destinations lists them): accounts stores them without knowing whose
// they are.
const (
	crmBaseURL  = "https://api.crm.example/1"
	mailBaseURL = "https://api.mail.example"
)

func crm() Section {
	return Section{Name: "crm", Fields: []SectionField{
		{Key: "enabled", Kind: KindBool},
		{Key: "app_id", Kind: KindText},
		{Key: "api_key", Kind: KindSecret},
		{Key: "base_url", Kind: KindURL, Default: crmBaseURL},
		{Key: "history", Kind: KindHistory, Default: HistoryProfiles},
		{Key: "limits.per_minute", Kind: KindText},
	}}
}

func mail() Section {
	return Section{Name: "mail", Fields: []SectionField{
		{Key: "enabled", Kind: KindBool},
		{Key: "api_key", Kind: KindSecret},
		{Key: "base_url", Kind: KindURL, Default: mailBaseURL},
		{Key: "history", Kind: KindHistory, Default: HistoryProfiles},
	}}
}

// sectionDefaults are the settings of crm and mail in an account that sets none.
func sectionDefaults() map[string]any {
	return map[string]any{
		"crm.enabled": false, "crm.app_id": "", "crm.api_key": Secret{}, "crm.base_url": crmBaseURL,
		"crm.history": HistoryProfiles, "crm.limits.per_minute": "",
		"mail.enabled": false, "mail.api_key": Secret{}, "mail.base_url": mailBaseURL, "mail.history": HistoryProfiles,
	}
}
