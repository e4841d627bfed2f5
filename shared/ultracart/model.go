package ultracart

// Decoding structs for the parts of UltraCart's REST models (API version 2017-03-01) that
// cartrelay reads. Field names are UltraCart's wire names; every other field is ignored.
// Which sub-objects are present depends on the webhook's expansion setting.

// Currency is UltraCart's money object: Value in the merchant's base currency, Localized in
// the customer's currency (CurrencyCode).
type Currency struct {
	Value              Decimal `json:"value"`
	CurrencyCode       Text    `json:"currency_code"`
	ExchangeRate       Decimal `json:"exchange_rate"`
	Localized          Decimal `json:"localized"`
	LocalizedFormatted Text    `json:"localized_formatted"`
}

// Order is UltraCart's Order.
type Order struct {
	OrderID               Text            `json:"order_id"`
	MerchantID            Text            `json:"merchant_id"`
	CreationDTS           Text            `json:"creation_dts"`
	CurrentStage          Text            `json:"current_stage"`
	CurrentStageHistories []StageHistory  `json:"current_stage_histories"`
	RefundDTS             Text            `json:"refund_dts"`
	RefundReason          Text            `json:"refund_reason"`
	RejectDTS             Text            `json:"reject_dts"`
	RejectReason          Text            `json:"reject_reason"`
	CurrencyCode          Text            `json:"currency_code"`
	ExchangeRate          Decimal         `json:"exchange_rate"`
	LanguageISOCode       Text            `json:"language_iso_code"`
	Billing               *Billing        `json:"billing"`
	Shipping              *Shipping       `json:"shipping"`
	Items                 []OrderItem     `json:"items"`
	Summary               *Summary        `json:"summary"`
	Payment               *Payment        `json:"payment"`
	Coupons               []Coupon        `json:"coupons"`
	UTMs                  []UTM           `json:"utms"`
	Affiliates            []Affiliate     `json:"affiliates"`
	Marketing             *Marketing      `json:"marketing"`
	AutoOrder             *OrderAutoOrder `json:"auto_order"`
	Checkout              *Checkout       `json:"checkout"`
	CustomerProfile       *Customer       `json:"customer_profile"`
	Properties            []Property      `json:"properties"`
	Tags                  []Tag           `json:"tags"`
}

// StageHistory is one stage transition of an order.
type StageHistory struct {
	BeforeStage   Text `json:"before_stage"`
	AfterStage    Text `json:"after_stage"`
	TransitionDTS Text `json:"transition_dts"`
}

// Billing is the order's billing contact; Email is the customer's email.
type Billing struct {
	FirstName        Text   `json:"first_name"`
	LastName         Text   `json:"last_name"`
	Company          Text   `json:"company"`
	Title            Text   `json:"title"`
	Email            Text   `json:"email"`
	CCEmails         []Text `json:"cc_emails"`
	DayPhone         Text   `json:"day_phone"`
	DayPhoneE164     Text   `json:"day_phone_e164"`
	EveningPhone     Text   `json:"evening_phone"`
	EveningPhoneE164 Text   `json:"evening_phone_e164"`
	CellPhone        Text   `json:"cell_phone"`
	CellPhoneE164    Text   `json:"cell_phone_e164"`
	Address1         Text   `json:"address1"`
	Address2         Text   `json:"address2"`
	City             Text   `json:"city"`
	StateRegion      Text   `json:"state_region"`
	PostalCode       Text   `json:"postal_code"`
	CountryCode      Text   `json:"country_code"`
}

// Shipping is the ship-to address and shipment state.
type Shipping struct {
	FirstName             Text              `json:"first_name"`
	LastName              Text              `json:"last_name"`
	Company               Text              `json:"company"`
	Address1              Text              `json:"address1"`
	Address2              Text              `json:"address2"`
	City                  Text              `json:"city"`
	StateRegion           Text              `json:"state_region"`
	PostalCode            Text              `json:"postal_code"`
	CountryCode           Text              `json:"country_code"`
	DayPhone              Text              `json:"day_phone"`
	DayPhoneE164          Text              `json:"day_phone_e164"`
	EveningPhone          Text              `json:"evening_phone"`
	EveningPhoneE164      Text              `json:"evening_phone_e164"`
	ShippingMethod        Text              `json:"shipping_method"`
	ShippingDate          Text              `json:"shipping_date"`
	ShipOnDate            Text              `json:"ship_on_date"`
	DeliveryDate          Text              `json:"delivery_date"`
	TrackingNumbers       []Text            `json:"tracking_numbers"`
	TrackingNumberDetails []TrackingDetails `json:"tracking_number_details"`
}

// TrackingDetails is one tracking number with its carrier status.
type TrackingDetails struct {
	TrackingNumber       Text `json:"tracking_number"`
	TrackingURL          Text `json:"tracking_url"`
	ShippingMethod       Text `json:"shipping_method"`
	Status               Text `json:"status"`
	StatusDescription    Text `json:"status_description"`
	ShippedDate          Text `json:"shipped_date"`
	ExpectedDeliveryDate Text `json:"expected_delivery_date"`
	ActualDeliveryDate   Text `json:"actual_delivery_date"`
}

// OrderItem is one line of an order.
type OrderItem struct {
	MerchantItemID        Text       `json:"merchant_item_id"`
	Description           Text       `json:"description"`
	Quantity              Decimal    `json:"quantity"`
	ItemIndex             Decimal    `json:"item_index"`
	Cost                  *Currency  `json:"cost"`
	UnitCostWithDiscount  *Currency  `json:"unit_cost_with_discount"`
	TotalCostWithDiscount *Currency  `json:"total_cost_with_discount"`
	Discount              *Currency  `json:"discount"`
	QuantityRefunded      Decimal    `json:"quantity_refunded"`
	TotalRefunded         *Currency  `json:"total_refunded"`
	Kit                   Flag       `json:"kit"`
	KitComponent          Flag       `json:"kit_component"`
	ParentMerchantItemID  Text       `json:"parent_merchant_item_id"`
	Upsell                Flag       `json:"upsell"`
	ShippedDTS            Text       `json:"shipped_dts"`
	ItemReferenceOID      ID         `json:"item_reference_oid"`
	Properties            []Property `json:"properties"`
	// Not in UltraCart's OrderItem model, but read when present (its CartItem has them).
	DefaultImageURL Text `json:"default_image_url"`
	ImageURL        Text `json:"image_url"`
	ViewURL         Text `json:"view_url"`
}

// Summary holds the order's totals.
type Summary struct {
	Total                  *Currency `json:"total"`
	Subtotal               *Currency `json:"subtotal"`
	SubtotalDiscount       *Currency `json:"subtotal_discount"`
	ShippingHandlingTotal  *Currency `json:"shipping_handling_total"`
	ShippingHandlingDisc   *Currency `json:"shipping_handling_total_discount"`
	Tax                    *Currency `json:"tax"`
	TotalRefunded          *Currency `json:"total_refunded"`
	SubtotalRefunded       *Currency `json:"subtotal_refunded"`
	TaxRefunded            *Currency `json:"tax_refunded"`
	ShippingHandlingRefund *Currency `json:"shipping_handling_refunded"`
}

// Payment is the order's payment state.
type Payment struct {
	PaymentDTS    Text `json:"payment_dts"`
	PaymentMethod Text `json:"payment_method"`
	PaymentStatus Text `json:"payment_status"`
	TestOrder     Flag `json:"test_order"`
}

// Coupon is a coupon applied to the order.
type Coupon struct {
	CouponCode     Text `json:"coupon_code"`
	BaseCouponCode Text `json:"base_coupon_code"`
}

// UTM is one marketing click; index 0 of an order's list is the most recent.
type UTM struct {
	UTMSource   Text `json:"utm_source"`
	UTMMedium   Text `json:"utm_medium"`
	UTMCampaign Text `json:"utm_campaign"`
	UTMTerm     Text `json:"utm_term"`
	UTMContent  Text `json:"utm_content"`
	UTMID       Text `json:"utm_id"`
	ClickDTS    Text `json:"click_dts"`
	Fbclid      Text `json:"fbclid"`
	Gbraid      Text `json:"gbraid"`
	Wbraid      Text `json:"wbraid"`
	Glcid       Text `json:"glcid"` // sic: UltraCart's name for Google's gclid
	Gclid       Text `json:"gclid"`
	Msclkid     Text `json:"msclkid"`
	Ttclid      Text `json:"ttclid"`
	Vmcid       Text `json:"vmcid"`
	FacebookAd  Text `json:"facebook_ad_id"`
	// Iterable's ids, when a merchant's links carry them (encoding/json matches names without
	// regard to case, so iterableCampaignId and IterableCampaignID both land here).
	IterableCampaignID  Text `json:"iterableCampaignId"`
	IterableTemplateID  Text `json:"iterableTemplateId"`
	IterableCampaignID2 Text `json:"iterable_campaign_id"`
	IterableTemplateID2 Text `json:"iterable_template_id"`
}

// Affiliate credits an order; index 0 sent it.
type Affiliate struct {
	AffiliateOID ID   `json:"affiliate_oid"`
	SubID        Text `json:"sub_id"`
}

// Marketing holds the customer's opt-ins.
type Marketing struct {
	MailingList    Flag `json:"mailing_list"`
	CellPhoneOptIn Flag `json:"cell_phone_opt_in"`
}

// OrderAutoOrder is the auto order (subscription) an order belongs to.
type OrderAutoOrder struct {
	AutoOrderOID    ID              `json:"auto_order_oid"`
	AutoOrderCode   Text            `json:"auto_order_code"`
	OriginalOrderID Text            `json:"original_order_id"`
	Status          Text            `json:"status"`
	Enabled         Flag            `json:"enabled"`
	NextAttempt     Text            `json:"next_attempt"`
	CanceledDTS     Text            `json:"canceled_dts"`
	CancelReason    Text            `json:"cancel_reason"`
	FailureReason   Text            `json:"failure_reason"`
	Items           []AutoOrderItem `json:"items"`
}

// AutoOrder is UltraCart's AutoOrder, the payload of auto_order_* events.
type AutoOrder struct {
	AutoOrderOID           ID              `json:"auto_order_oid"`
	AutoOrderCode          Text            `json:"auto_order_code"`
	OriginalOrderID        Text            `json:"original_order_id"`
	OriginalOrder          *Order          `json:"original_order"`
	RebillOrders           []Order         `json:"rebill_orders"`
	Items                  []AutoOrderItem `json:"items"`
	Status                 Text            `json:"status"`
	Enabled                Flag            `json:"enabled"`
	Completed              Flag            `json:"completed"`
	NextAttempt            Text            `json:"next_attempt"`
	CreditCardAttempt      Decimal         `json:"credit_card_attempt"`
	FailureReason          Text            `json:"failure_reason"`
	CanceledDTS            Text            `json:"canceled_dts"`
	CancelReason           Text            `json:"cancel_reason"`
	CanceledByUser         Text            `json:"canceled_by_user"`
	CancelUpgrade          Flag            `json:"cancel_upgrade"`
	CancelDowngrade        Flag            `json:"cancel_downgrade"`
	DisabledDTS            Text            `json:"disabled_dts"`
	MergedDTS              Text            `json:"merged_dts"`
	MergedIntoAutoOrderOID ID              `json:"merged_into_auto_order_oid"`
	OverrideAffiliateID    ID              `json:"override_affiliate_id"`
}

// AutoOrderItem is one item scheduled to rebill.
type AutoOrderItem struct {
	OriginalItemID     Text    `json:"original_item_id"`
	NextItemID         Text    `json:"next_item_id"`
	OriginalQuantity   Decimal `json:"original_quantity"`
	Frequency          Text    `json:"frequency"`
	NextShipmentDTS    Text    `json:"next_shipment_dts"`
	ArbitraryUnitCost  Decimal `json:"arbitrary_unit_cost"`
	Paused             Flag    `json:"paused"`
	NoOrderAfterDTS    Text    `json:"no_order_after_dts"`
	RemainingRepeatCnt Decimal `json:"remaining_repeat_count"`
}

// Checkout holds checkout context.
type Checkout struct {
	StorefrontHostName Text `json:"storefront_host_name"`
	UpsellPathCode     Text `json:"upsell_path_code"`
	CustomerIPAddress  Text `json:"customer_ip_address"`
	ReturnURL          Text `json:"return_url"`
}

// Property is a name/value pair on an order or item.
type Property struct {
	Name  Text `json:"name"`
	Value Text `json:"value"`
}

// Tag is an order tag.
type Tag struct {
	TagValue Text `json:"tag_value"`
}

// Customer is UltraCart's Customer (customer profile), the payload of customer_* events.
type Customer struct {
	CustomerProfileOID ID                `json:"customer_profile_oid"`
	Email              Text              `json:"email"`
	Billing            []CustomerAddress `json:"billing"`
	Shipping           []CustomerAddress `json:"shipping"`
	SignupDTS          Text              `json:"signup_dts"`
	LastModifiedDTS    Text              `json:"last_modified_dts"`
}

// CustomerAddress is one of a customer's billing or shipping addresses.
type CustomerAddress struct {
	FirstName      Text `json:"first_name"`
	LastName       Text `json:"last_name"`
	Company        Text `json:"company"`
	Address1       Text `json:"address1"`
	Address2       Text `json:"address2"`
	City           Text `json:"city"`
	StateRegion    Text `json:"state_region"`
	PostalCode     Text `json:"postal_code"`
	CountryCode    Text `json:"country_code"`
	DayPhone       Text `json:"day_phone"`
	EveningPhone   Text `json:"evening_phone"`
	DefaultBilling Flag `json:"default_billing"`
	DefaultShip    Flag `json:"default_shipping"`
}

// Item is UltraCart's Item (catalogue product), the payload of item_* events.
type Item struct {
	MerchantItemOID    ID           `json:"merchant_item_oid"`
	MerchantItemID     Text         `json:"merchant_item_id"`
	Description        Text         `json:"description"`
	Inactive           Flag         `json:"inactive"`
	CreationDTS        Text         `json:"creation_dts"`
	LastModifiedDTS    Text         `json:"last_modified_dts"`
	ParentCategoryPath Text         `json:"parent_category_path"`
	Pricing            *ItemPricing `json:"pricing"`
	Content            *ItemContent `json:"content"`
}

// ItemPricing holds an item's price (plain numbers, not Currency objects).
type ItemPricing struct {
	Cost         Decimal `json:"cost"`
	SaleCost     Decimal `json:"sale_cost"`
	CurrencyCode Text    `json:"currency_code"`
}

// ItemContent holds an item's storefront content.
type ItemContent struct {
	ExtendedDescription Text             `json:"extended_description"`
	ViewURL             Text             `json:"view_url"`
	Multimedia          []ItemMultimedia `json:"multimedia"`
}

// ItemMultimedia is one image or file of an item.
type ItemMultimedia struct {
	Type             Text `json:"type"`
	URL              Text `json:"url"`
	CloudURL         Text `json:"cloud_url"`
	Code             Text `json:"code"`
	ExcludeFromGalry Flag `json:"exclude_from_gallery"`
	IsDefault        Flag `json:"is_default"`
	// Thumbnails are UltraCart's resized copies of the image (ItemContentMultimediaThumbnail).
	Thumbnails []ItemThumbnail `json:"thumbnails"`
}

// ItemThumbnail is one resized copy of a catalogue image.
type ItemThumbnail struct {
	Width    Decimal `json:"width"`
	Height   Decimal `json:"height"`
	HTTPSURL Text    `json:"https_url"`
	HTTPURL  Text    `json:"http_url"`
}

// Cart is UltraCart's Cart, the payload of checkout_cart_* events.
type Cart struct {
	CartID           Text                 `json:"cart_id"`
	MerchantID       Text                 `json:"merchant_id"`
	BaseCurrencyCode Text                 `json:"base_currency_code"`
	CurrencyCode     Text                 `json:"currency_code"`
	ExchangeRate     Decimal              `json:"exchange_rate"`
	Billing          *Billing             `json:"billing"`
	Items            []CartItem           `json:"items"`
	Summary          *CartSummary         `json:"summary"`
	CustomerProfile  *CartCustomerProfile `json:"customer_profile"`
	Checkout         *Checkout            `json:"checkout"`
	Marketing        *CartMarketing       `json:"marketing"`
	UTMs             []UTM                `json:"utms"`
	Coupons          []Coupon             `json:"coupons"`
}

// CartItem is one line of a cart.
type CartItem struct {
	ItemID                Text      `json:"item_id"`
	Description           Text      `json:"description"`
	Quantity              Decimal   `json:"quantity"`
	UnitCost              *Currency `json:"unit_cost"`
	Discount              *Currency `json:"discount"`
	TotalCost             *Currency `json:"total_cost"`
	TotalCostWithDiscount *Currency `json:"total_cost_with_discount"`
	DefaultImageURL       Text      `json:"default_image_url"`
	ViewURL               Text      `json:"view_url"`
	// Multimedia is the item's images, each with UltraCart's thumbnails (CartItemMultimedia).
	Multimedia []CartMultimedia `json:"multimedia"`
	Upsell     Flag             `json:"upsell"`
	Kit        Flag             `json:"kit"`
}

// CartMultimedia is one image of a cart item.
type CartMultimedia struct {
	Type       Text            `json:"type"`
	URL        Text            `json:"url"`
	IsDefault  Flag            `json:"is_default"`
	Thumbnails []CartThumbnail `json:"thumbnails"`
}

// CartThumbnail is one resized copy of a cart item's image (CartItemMultimediaThumbnail).
type CartThumbnail struct {
	Width  Decimal `json:"width"`
	Height Decimal `json:"height"`
	URL    Text    `json:"url"`
}

// CartSummary holds a cart's totals.
type CartSummary struct {
	Total    *Currency `json:"total"`
	Subtotal *Currency `json:"subtotal"`
}

// CartCustomerProfile is the logged-in customer of a cart.
type CartCustomerProfile struct {
	CustomerProfileOID ID   `json:"customer_profile_oid"`
	Email              Text `json:"email"`
}

// CartMarketing holds a cart's opt-ins.
type CartMarketing struct {
	MailingListOptIn Flag `json:"mailing_list_opt_in"`
	CellPhoneOptIn   Flag `json:"cell_phone_opt_in"`
}

// ChargebackDispute is UltraCart's ChargebackDispute, the payload of chargeback_* events. Its
// status is free text: UltraCart documents no list of values.
type ChargebackDispute struct {
	ChargebackDisputeOID ID      `json:"chargeback_dispute_oid"`
	OrderID              Text    `json:"order_id"`
	Amount               Decimal `json:"amount"`
	Currency             Text    `json:"currency"`
	Status               Text    `json:"status"`
	ChargebackDTS        Text    `json:"chargeback_dts"`
	ReasonCode           Text    `json:"reason_code"`
	CaseNumber           Text    `json:"case_number"`
	// Order is the disputed order, when the webhook's expansion includes it.
	Order *Order `json:"order"`
}
