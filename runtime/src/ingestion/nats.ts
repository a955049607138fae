/** NATS header naming the Source (`<namespace>/<name>`) of a stored event; the event itself carries nothing foreign. */
export const SOURCE_HEADER = 'Sy-Source';
