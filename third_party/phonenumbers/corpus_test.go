package phonenumbers

// cartrelay: a golden record of what this copy answers for a broad corpus of numbers, so that
// a change to how the metadata is read or merged cannot change one phone result unnoticed.
// testdata/corpus.txt.gz was written by v1.8.1 as decoded by google.golang.org/protobuf;
// `go test -run TestCorpus -update` rewrites it (only when a result is meant to change).

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/corpus.txt.gz from this build")

const corpusFile = "testdata/corpus.txt.gz"

func TestCorpus(t *testing.T) {
	got := corpusReport()
	if *update {
		var buf bytes.Buffer
		zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(zw, strings.Join(got, "\n")+"\n"); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(corpusFile, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %d lines to %s", len(got), corpusFile)
		return
	}
	want := readCorpus(t)
	if len(got) != len(want) {
		t.Errorf("%d result lines, want %d", len(got), len(want))
	}
	diffs := 0
	for i := 0; i < min(len(got), len(want)); i++ {
		if got[i] != want[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i+1, got[i], want[i])
			if diffs++; diffs == 20 {
				t.Fatal("more differences left out")
			}
		}
	}
}

func readCorpus(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(corpusFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

var corpusTypes = []PhoneNumberType{
	FIXED_LINE, MOBILE, TOLL_FREE, PREMIUM_RATE, SHARED_COST, VOIP, PERSONAL_NUMBER, PAGER, UAN, VOICEMAIL,
}

// corpusInputs are numbers as people and shop checkouts write them, parsed against every
// region.
var corpusInputs = []string{
	"(415) 555-0123", "415.555.0123", "+1 415 555 0123", "1-415-555-0123", "001 415 555 0123",
	"011 44 20 7946 0958", "+44 20 7946 0958", "020 7946 0958", "07700 900123", "+44 (0) 7700 900123",
	"0049 30 123456", "+49 1512 3456789", "030 1234567", "+33 1 42 68 53 00", "01 42 68 53 00",
	"+39 06 6982", "06 698 12345", "+61 2 9374 4000", "0412 345 678", "+81 3-1234-5678",
	"090-1234-5678", "+86 10 1234 5678", "138 0013 8000", "+91 98765 43210", "098765 43210",
	"+55 11 91234-5678", "(11) 91234-5678", "+52 1 55 1234 5678", "+7 495 123-45-67", "8 495 123 45 67",
	"1-800-FLOWERS", "1 800 GOT JUNK", "+1 800 555 0199 ext. 123", "415-555-0123 x45", "415 555 0123;ext=7",
	"tel:+1-415-555-0123;phone-context=example.com", "+800 1234 5678", "+882 345 678 90", "+979 123 456 789",
	"112", "911", "999", "110", "0", "+", "++1 415", "abc", "12", "123456789012345678", "+1 415 555 01234",
	"٠١٢٣٤٥٦٧٨٩", "+٤٤ ٢٠ ٧٩٤٦ ٠٩٥٨", "０３－１２３４－５６７８", "+1 (415) 555-0123 ext 9 9",
}

// corpusRegions are the regions the corpus inputs are parsed against besides each number's
// own; "ZZ" is the unknown region.
var corpusRegions = []string{"US", "GB", "DE", "FR", "IT", "AU", "JP", "BR", "IN", "MX", "RU", "AR", "ZZ"}

func corpusReport() []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }

	regions := make([]string, 0, len(GetSupportedRegions()))
	for r := range GetSupportedRegions() {
		regions = append(regions, r)
	}
	slices.Sort(regions)
	codes := make([]int, 0)
	for c := range GetSupportedGlobalNetworkCallingCodes() {
		codes = append(codes, c)
	}
	slices.Sort(codes)

	for _, region := range regions {
		cc := GetCountryCodeForRegion(region)
		add("region %s cc=%d ndd=%q ndd-digits=%q nanpa=%v portable=%v token=%q main=%q all=%v",
			region, cc, GetNddPrefixForRegion(region, false), GetNddPrefixForRegion(region, true),
			IsNANPACountry(region), IsMobileNumberPortableRegion(region), GetCountryMobileToken(cc),
			GetRegionCodeForCountryCode(cc), GetRegionCodesForCountryCode(cc))
		describeNumber(add, region+" example", GetExampleNumber(region), region)
		for _, typ := range corpusTypes {
			num := GetExampleNumberForType(region, typ)
			if num == nil {
				continue
			}
			label := fmt.Sprintf("%s type %d", region, typ)
			describeNumber(add, label, num, region)
			variants(add, label, num, region)
		}
		for _, in := range corpusInputs {
			parseLine(add, region, in, region)
		}
		for _, short := range []string{"112", "911", "999", "000", "110", "119", "100", "15", "17", "18", "1234", "116000", "3456"} {
			add("short %s %s emergency=%v connects=%v", region, short,
				IsEmergencyNumber(short, region), ConnectsToEmergencyNumber(short, region))
			if num, err := Parse(short, region); err == nil {
				add("short %s %s possible=%v possible-region=%v valid=%v valid-region=%v", region, short,
					IsPossibleShortNumber(num), IsPossibleShortNumberForRegion(num, region),
					IsValidShortNumber(num), IsValidShortNumberForRegion(num, region))
			}
		}
	}
	for _, cc := range codes {
		label := fmt.Sprintf("non-geo %d", cc)
		num := GetExampleNumberForNonGeoEntity(cc)
		describeNumber(add, label, num, "US")
		if num != nil {
			variants(add, label, num, "001")
		}
	}
	for _, in := range corpusInputs {
		for _, region := range corpusRegions {
			parseLine(add, region, in, region)
		}
	}
	for i, a := range corpusInputs {
		b := corpusInputs[(i+1)%len(corpusInputs)]
		add("match %q %q: self=%d next=%d", a, b, IsNumberMatch(a, a), IsNumberMatch(a, b))
	}
	return out
}

// variants parses num written in each format (and mangled) against its own region and
// others, and compares the results with num.
func variants(add func(string, ...any), label string, num *PhoneNumber, region string) {
	nsn := GetNationalSignificantNumber(num)
	inputs := []string{
		Format(num, NATIONAL), Format(num, INTERNATIONAL), Format(num, E164), Format(num, RFC3966),
		nsn, nsn[:len(nsn)-1], nsn + "5", Format(num, INTERNATIONAL) + " ext. 42",
		FormatOutOfCountryCallingNumber(num, "US"), FormatOutOfCountryCallingNumber(num, "DE"),
	}
	for _, in := range inputs {
		for _, from := range []string{region, "US", "ZZ"} {
			parseLine(add, label, in, from)
		}
		add("%s match %q: %d", label, in, IsNumberMatchWithOneNumber(num, in))
	}
	nn := num.GetNationalNumber()*10 + 7
	long := &PhoneNumber{CountryCode: num.CountryCode, NationalNumber: &nn, Extension: num.Extension,
		ItalianLeadingZero: num.ItalianLeadingZero, NumberOfLeadingZeros: num.NumberOfLeadingZeros}
	truncated := TruncateTooLongNumber(long)
	add("%s truncate: %v %d", label, truncated, long.GetNationalNumber())
	pat, format, rule := `(\d{2})(\d+)`, "$1-$2", "$NP $FG"
	pattern := &NumberFormat{Pattern: &pat, Format: &format, NationalPrefixFormattingRule: &rule}
	add("%s by-pattern: %q %q", label, FormatByPattern(num, NATIONAL, []*NumberFormat{pattern}),
		FormatByPattern(num, INTERNATIONAL, []*NumberFormat{pattern}))
}

func describeNumber(add func(string, ...any), label string, num *PhoneNumber, from string) {
	if num == nil {
		add("%s: none", label)
		return
	}
	add("%s: %s", label, numberFields(num))
	add("%s: %q %q %q %q", label, Format(num, E164), Format(num, INTERNATIONAL), Format(num, NATIONAL), Format(num, RFC3966))
	add("%s: valid=%v valid-region=%v possible=%v reason=%d type=%d region=%s nsn=%s area=%d ndc=%d",
		label, IsValidNumber(num), IsValidNumberForRegion(num, from), IsPossibleNumber(num),
		IsPossibleNumberWithReason(num), GetNumberType(num), GetRegionCodeForNumber(num),
		GetNationalSignificantNumber(num), GetLengthOfGeographicalAreaCode(num),
		GetLengthOfNationalDestinationCode(num))
	add("%s: from-US=%q from-GB=%q from-JP=%q keep-alpha=%q mobile-US=%q mobile-own=%q carrier=%q preferred=%q",
		label, FormatOutOfCountryCallingNumber(num, "US"), FormatOutOfCountryCallingNumber(num, "GB"),
		FormatOutOfCountryCallingNumber(num, "JP"), FormatOutOfCountryKeepingAlphaChars(num, "AU"),
		FormatNumberForMobileDialing(num, "US", true), FormatNumberForMobileDialing(num, from, false),
		FormatNationalNumberWithCarrierCode(num, "15"), FormatNationalNumberWithPreferredCarrierCode(num, "21"))
	add("%s: short possible=%v valid=%v", label, IsPossibleShortNumber(num), IsValidShortNumber(num))
}

func parseLine(add func(string, ...any), label, in, region string) {
	num, err := Parse(in, region)
	if err != nil {
		add("%s parse %q in %s: error %v", label, in, region, err)
		return
	}
	add("%s parse %q in %s: %s %q valid=%v type=%d", label, in, region, numberFields(num),
		Format(num, E164), IsValidNumber(num), GetNumberType(num))
	raw, err := ParseAndKeepRawInput(in, region)
	if err != nil {
		add("%s raw %q in %s: error %v", label, in, region, err)
		return
	}
	add("%s raw %q in %s: %s original=%q", label, in, region, numberFields(raw), FormatInOriginalFormat(raw, region))
}

func numberFields(n *PhoneNumber) string {
	field := func(set bool, v any) string {
		if !set {
			return "-"
		}
		return fmt.Sprint(v)
	}
	return fmt.Sprintf("cc=%s nn=%s ext=%s ilz=%s nlz=%s raw=%s src=%s carrier=%s",
		field(n.CountryCode != nil, n.GetCountryCode()), field(n.NationalNumber != nil, n.GetNationalNumber()),
		field(n.Extension != nil, fmt.Sprintf("%q", n.GetExtension())),
		field(n.ItalianLeadingZero != nil, n.GetItalianLeadingZero()),
		field(n.NumberOfLeadingZeros != nil, n.GetNumberOfLeadingZeros()),
		field(n.RawInput != nil, fmt.Sprintf("%q", n.GetRawInput())),
		field(n.CountryCodeSource != nil, int32(n.GetCountryCodeSource())),
		field(n.PreferredDomesticCarrierCode != nil, fmt.Sprintf("%q", n.GetPreferredDomesticCarrierCode())))
}
