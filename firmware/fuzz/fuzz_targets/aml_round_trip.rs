//! The AML decoder on arbitrary bytes must not panic, and whatever it accepts must
//! re-encode to bytes that decode to the same terms.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rx86_firmware::acpi::aml;

fuzz_target!(|data: &[u8]| {
    if let Ok(terms) = aml::decode(data) {
        let bytes = aml::encode(&terms).expect("decoded terms re-encode");
        assert_eq!(aml::decode(&bytes).expect("re-encoded terms decode"), terms);
    }
});
