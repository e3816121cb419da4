//! The `message!` macro: each message struct is described once, and its Rust type,
//! `Default`, encoder and decoder all come from that description.
//!
//! ```text
//! message! {
//!     /// Doc of the struct.
//!     TopicData {
//!         /// Doc of the field.
//!         name: String = String::new(); versions 0..,
//!         topic_id: Uuid = Uuid::ZERO; versions 13..,
//!         rack: Option<String> = None; versions 5..; tag 0,
//!     }
//! }
//! ```
//!
//! A field is on the wire only in the versions its range contains; in other versions it
//! decodes to its default and is not written. A field with a `tag` lives in the tagged
//! section that ends every struct in flexible versions, and is written only when it
//! differs from its default (as Kafka does). Unknown tags are skipped on decode.

/// `Some(tag)` for a tagged field, `None` for a positional one.
macro_rules! tag_of {
    () => {
        None::<u32>
    };
    ($tag:literal) => {
        Some::<u32>($tag)
    };
}

macro_rules! message {
    (
        $(#[$meta:meta])*
        $name:ident {
            $(
                $(#[$field_meta:meta])*
                $field:ident : $ty:ty = $default:expr ; versions $versions:expr $(; tag $tag:literal)?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $( $(#[$field_meta])* pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self { $( $field: $default, )* }
            }
        }

        impl $crate::codec::Wire for $name {
            #[allow(unused_variables, clippy::redundant_clone)]
            fn encode(&self, buf: &mut ::bytes::BytesMut, ctx: $crate::codec::Ctx) {
                $(
                    if tag_of!($($tag)?).is_none() && ($versions).contains(&ctx.version) {
                        $crate::codec::Wire::encode(&self.$field, buf, ctx);
                    }
                )*
                if ctx.flexible {
                    #[allow(unused_mut)]
                    let mut tagged = $crate::codec::TaggedFields::default();
                    $(
                        if let Some(tag) = tag_of!($($tag)?) {
                            let default: $ty = $default;
                            if ($versions).contains(&ctx.version) && self.$field != default {
                                tagged.push(tag, &self.$field, ctx);
                            }
                        }
                    )*
                    tagged.finish(buf);
                }
            }

            #[allow(unused_mut, unused_variables)]
            fn decode(
                buf: &mut ::bytes::Bytes,
                ctx: $crate::codec::Ctx,
            ) -> Result<Self, $crate::DecodeError> {
                $(
                    let mut $field: $ty =
                        if tag_of!($($tag)?).is_none() && ($versions).contains(&ctx.version) {
                            $crate::codec::Wire::decode(buf, ctx)?
                        } else {
                            $default
                        };
                )*
                if ctx.flexible {
                    let count = $crate::codec::get_unsigned_varint(buf)?;
                    for _ in 0..count {
                        let (tag, mut value) = $crate::codec::get_tagged_field(buf)?;
                        $(
                            if tag_of!($($tag)?) == Some(tag) && ($versions).contains(&ctx.version) {
                                $field = $crate::codec::Wire::decode(&mut value, ctx)?;
                            }
                        )*
                    }
                }
                Ok(Self { $( $field, )* })
            }
        }

        #[cfg(test)]
        impl $crate::codec::sample::Sample for $name {
            #[allow(unused_variables)]
            fn sample(rng: &mut $crate::codec::sample::SampleRng, ctx: $crate::codec::Ctx) -> Self {
                let mut value = Self::default();
                $(
                    let on_wire = match tag_of!($($tag)?) {
                        Some(_) => ctx.flexible,
                        None => true,
                    };
                    if on_wire && ($versions).contains(&ctx.version) {
                        value.$field = $crate::codec::sample::Sample::sample(rng, ctx);
                    }
                )*
                value
            }
        }
    };
}

/// Declares a top-level request or response: its API key, the versions the schema
/// defines, and the first flexible version.
macro_rules! api_message {
    ($name:ident, api_key $key:literal, versions $min:literal ..= $max:literal, flexible $flex:expr) => {
        impl $crate::api::dispatch::ApiMessage for $name {
            const API_KEY: i16 = $key;
            const MIN_VERSION: i16 = $min;
            const MAX_VERSION: i16 = $max;
            const FIRST_FLEXIBLE_VERSION: Option<i16> = $flex;
        }
    };
}
