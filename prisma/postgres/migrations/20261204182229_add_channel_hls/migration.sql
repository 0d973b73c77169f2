-- AlterTable
ALTER TABLE "VirtualLive" ADD COLUMN     "hls" BOOLEAN NOT NULL DEFAULT true;
